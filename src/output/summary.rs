//! Reads a saved output file row by row: the row count and the union of columns in the
//! order first seen, in memory that does not grow with the number of rows.

use std::fmt;
use std::io::BufReader;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::rows::{ColumnUnion, RowsError};

#[derive(Default)]
struct Summary {
    rows: u64,
    columns: ColumnUnion,
}

/// Row count and columns of the JSON array of objects at `path`.
pub fn summarise(path: &Path) -> Result<(u64, Vec<String>), RowsError> {
    let file = std::fs::File::open(path)?;
    let mut reader =
        serde_json::Deserializer::from_reader(BufReader::with_capacity(64 * 1024, file));
    let mut summary = Summary::default();
    (&mut reader)
        .deserialize_seq(&mut summary)
        .map_err(RowsError::NotRows)?;
    reader.end().map_err(RowsError::Trailing)?;
    Ok((summary.rows, summary.columns.into_columns()))
}

impl<'de> Visitor<'de> for &mut Summary {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(RowKeys(&mut *self))?.is_some() {
            self.rows += 1;
        }
        Ok(())
    }
}

/// One row: its keys are noted, its values skipped.
struct RowKeys<'a>(&'a mut Summary);

impl<'de> DeserializeSeed<'de> for RowKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row (an object of column to value)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(column) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            self.0.columns.note(&column);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rows_and_collects_columns_in_first_seen_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.json");
        std::fs::write(
            &path,
            r#"[{"sku":"A","price":1},{"sku":"B","color":{"x":[1]}},{"size":"L","sku":"C"}]"#,
        )
        .unwrap();
        assert_eq!(
            summarise(&path).unwrap(),
            (
                3,
                vec!["sku".into(), "price".into(), "color".into(), "size".into()]
            )
        );
        std::fs::write(&path, "[]").unwrap();
        assert_eq!(summarise(&path).unwrap(), (0, vec![]));
    }

    #[test]
    fn rejects_what_is_not_an_array_of_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.json");
        for bad in [
            r#"[{"sku":"A"},{"sku":"#,
            r#"{"sku":"A"}"#,
            "[1, 2]",
            "<html>",
            r#"[{"a":1}] trailing"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(summarise(&path).is_err(), "{bad} accepted");
        }
    }
}
