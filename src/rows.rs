//! A job's output rows (one JSON object per row, empty columns left out by the API) as a
//! table: the union of columns in first-seen order, and CSV per RFC 4180. CSV meant for
//! people (opened in a spreadsheet) has its formulas neutralised (OWASP's CSV injection):
//! a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return, and not a number,
//! gets a leading `'`; [`Cells::Exact`] keeps every value as it is.

use std::fmt;
use std::io::{self, Read, Write};

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use crate::domain::Row;

/// Every column that appears in any row, in the order first seen.
pub fn columns<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<String> {
    let mut union = ColumnUnion::default();
    for row in rows {
        row.keys().for_each(|column| union.note(column));
    }
    union.into_columns()
}

/// The union of the columns of rows seen one at a time, in the order first seen (rows in
/// memory, or read from a file row by row: `output::summary`).
#[derive(Default)]
pub struct ColumnUnion {
    columns: Vec<String>,
    seen: std::collections::HashSet<String>,
}

impl ColumnUnion {
    pub fn note(&mut self, column: &str) {
        if !self.seen.contains(column) {
            self.seen.insert(column.to_owned());
            self.columns.push(column.to_owned());
        }
    }

    pub fn into_columns(self) -> Vec<String> {
        self.columns
    }
}

/// How CSV cells are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cells {
    /// For a spreadsheet: a cell a spreadsheet would run as a formula is prefixed `'`.
    ForPeople,
    /// Every value exactly as it is (`--csv-raw`), for programs.
    Exact,
}

/// Writes `rows` as CSV with `columns` as the header; a column a row lacks is empty.
pub fn write_csv(
    out: &mut impl Write,
    columns: &[String],
    rows: &[Row],
    style: Cells,
) -> io::Result<()> {
    write_csv_header(out, columns, style)?;
    for row in rows {
        write_csv_row(out, columns, row, style)?;
    }
    Ok(())
}

/// Writes the CSV header of `columns`.
fn write_csv_header(out: &mut impl Write, columns: &[String], style: Cells) -> io::Result<()> {
    write_record(out, columns.iter().map(String::as_str), style)
}

/// Writes one row under `columns`; a column the row lacks is empty.
fn write_csv_row(
    out: &mut impl Write,
    columns: &[String],
    row: &Row,
    style: Cells,
) -> io::Result<()> {
    let cells: Vec<String> = columns.iter().map(|column| cell(row.get(column))).collect();
    write_record(out, cells.iter().map(String::as_str), style)
}

/// Calls `each` with every row of the JSON array `reader` holds, one row in memory at a
/// time; returns how many there were. An error from `each` stops the reading.
pub fn for_each_row(
    reader: impl Read,
    each: impl FnMut(Row) -> io::Result<()>,
) -> Result<u64, RowsError> {
    struct Each<F> {
        each: F,
        rows: u64,
        failed: Option<io::Error>,
    }
    impl<'de, F: FnMut(Row) -> io::Result<()>> Visitor<'de> for &mut Each<F> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of rows")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(row) = seq.next_element::<Row>()? {
                if let Err(error) = (self.each)(row) {
                    self.failed = Some(error);
                    return Err(serde::de::Error::custom("writing a row failed"));
                }
                self.rows += 1;
            }
            Ok(())
        }
    }
    let mut reader =
        serde_json::Deserializer::from_reader(io::BufReader::with_capacity(64 * 1024, reader));
    let mut state = Each {
        each,
        rows: 0,
        failed: None,
    };
    let read = (&mut reader).deserialize_seq(&mut state);
    if let Some(error) = state.failed {
        return Err(RowsError::Io(error));
    }
    read.map_err(RowsError::NotRows)?;
    reader.end().map_err(RowsError::Trailing)?;
    Ok(state.rows)
}

/// Writes the rows of the JSON array `reader` holds exactly as `serde_json`'s pretty
/// printer writes the whole array (and a newline), one row in memory at a time; calls
/// `each` after every row. Returns how many there were.
pub fn stream_json(
    reader: impl Read,
    out: &mut impl Write,
    mut each: impl FnMut(),
) -> Result<u64, RowsError> {
    let mut first = true;
    let rows = for_each_row(reader, |row| {
        out.write_all(if first { b"[\n" } else { b",\n" })?;
        first = false;
        // An element of a pretty array: the row pretty-printed, two spaces further in.
        let text = serde_json::to_string_pretty(&row).map_err(io::Error::other)?;
        for (n, line) in text.lines().enumerate() {
            if n > 0 {
                out.write_all(b"\n")?;
            }
            out.write_all(b"  ")?;
            out.write_all(line.as_bytes())?;
        }
        each();
        Ok(())
    })?;
    out.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
    Ok(rows)
}

/// Writes the rows of the JSON array `reader` holds as CSV under `columns` (their union,
/// read before), one row in memory at a time; calls `each` after every row.
pub fn stream_csv(
    reader: impl Read,
    out: &mut impl Write,
    columns: &[String],
    style: Cells,
    mut each: impl FnMut(),
) -> Result<u64, RowsError> {
    write_csv_header(out, columns, style)?;
    for_each_row(reader, |row| {
        write_csv_row(out, columns, &row, style)?;
        each();
        Ok(())
    })
}

/// Why output rows could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error("cannot read the rows: {0}")]
    Io(#[from] io::Error),
    #[error("not a JSON array of rows: {0}")]
    NotRows(serde_json::Error),
    #[error("unexpected data after the rows: {0}")]
    Trailing(serde_json::Error),
}

/// CSV of a JSON array of rows (as the API sends and sdm-watch saves them).
pub fn csv_from_json(json: &[u8], style: Cells) -> Result<Vec<u8>, RowsError> {
    let rows: Vec<Row> = serde_json::from_slice(json).map_err(RowsError::NotRows)?;
    let mut csv = Vec::new();
    write_csv(&mut csv, &columns(&rows), &rows, style)?;
    Ok(csv)
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// `cell` as a spreadsheet may show it without running it: one it would read as a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return, and not a number) gets
/// a leading `'`.
pub fn for_people(cell: &str) -> std::borrow::Cow<'_, str> {
    let formula =
        cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.trim().parse::<f64>().is_err();
    if formula {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Writes one CSV record of `cells`, quoting those that need it, ended by CRLF.
pub fn write_record<'a>(
    out: &mut impl Write,
    cells: impl Iterator<Item = &'a str>,
    style: Cells,
) -> io::Result<()> {
    let mut first = true;
    for cell in cells {
        let cell = match style {
            Cells::ForPeople => for_people(cell),
            Cells::Exact => std::borrow::Cow::Borrowed(cell),
        };
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        if cell.contains([',', '"', '\n', '\r']) {
            write!(out, "\"{}\"", cell.replace('"', "\"\""))?;
        } else {
            out.write_all(cell.as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: Value) -> Row {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn header_is_the_union_in_first_seen_order_and_cells_are_escaped() {
        let rows = vec![
            row(serde_json::json!({"sku": "A1", "price": 3})),
            row(serde_json::json!({"sku": "B2", "name": "Chair, \"oak\""})),
            row(serde_json::json!({"ean": null, "price": 4.5, "tags": ["x"]})),
        ];
        let columns = columns(&rows);
        assert_eq!(columns, ["sku", "price", "name", "ean", "tags"]);
        let mut out = Vec::new();
        write_csv(&mut out, &columns, &rows, Cells::ForPeople).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "sku,price,name,ean,tags\r\nA1,3,,,\r\nB2,,\"Chair, \"\"oak\"\"\",,\r\n,4.5,,,\"[\"\"x\"\"]\"\r\n"
        );
    }

    #[test]
    fn formulas_are_neutralised_for_people_and_kept_exact_for_programs() {
        let rows = vec![row(serde_json::json!({
            "a": "=HYPERLINK(\"http://x\",\"y\")",
            "b": "+1+2",
            "c": "-2+3",
            "d": "@SUM(A1)",
            "e": "\tx",
            "f": "\rx",
            "g": -5,
            "h": "-1.5",
            "i": "plain = text",
        }))];
        let columns = columns(&rows);
        let mut people = Vec::new();
        write_csv(&mut people, &columns, &rows, Cells::ForPeople).unwrap();
        let people = String::from_utf8(people).unwrap();
        assert_eq!(
            people.split_once("\r\n").unwrap().1,
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'+1+2,'-2+3,'@SUM(A1),'\tx,\"'\rx\",-5,-1.5,plain = text\r\n",
            "formulas prefixed; numbers and inner signs left alone"
        );
        let mut exact = Vec::new();
        write_csv(&mut exact, &columns, &rows, Cells::Exact).unwrap();
        let exact = String::from_utf8(exact).unwrap();
        assert!(
            exact.contains("\"=HYPERLINK(") && exact.contains(",+1+2,") && !exact.contains('\'')
        );
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-z ,\"\\\n\r\t<>é\u{1F600}]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                proptest::collection::btree_map("[a-c]{1,2}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The streamed output, a row at a time, against the obvious way: every row in
        /// memory, written by serde_json's pretty printer and `write_csv`.
        #[test]
        fn streaming_writes_what_the_whole_array_would(
            rows in proptest::collection::vec(
                proptest::collection::btree_map("[a-e ,\"]{1,3}", value(), 0..5),
                0..12,
            ),
        ) {
            let rows: Vec<Row> = rows
                .into_iter()
                .map(|row| row.into_iter().collect())
                .collect();
            let json = serde_json::to_vec(&rows).unwrap();

            let mut streamed = Vec::new();
            let mut ticks = 0;
            let count = stream_json(json.as_slice(), &mut streamed, || ticks += 1).unwrap();
            let whole = format!("{}\n", serde_json::to_string_pretty(&rows).unwrap());
            proptest::prop_assert_eq!(String::from_utf8(streamed).unwrap(), whole);
            proptest::prop_assert_eq!((count, ticks), (rows.len() as u64, rows.len()));

            let columns = columns(&rows);
            let mut streamed = Vec::new();
            stream_csv(json.as_slice(), &mut streamed, &columns, Cells::ForPeople, || ()).unwrap();
            let mut whole = Vec::new();
            write_csv(&mut whole, &columns, &rows, Cells::ForPeople).unwrap();
            proptest::prop_assert_eq!(streamed, whole);
        }
    }
}
