//! Property tests over everything sdm-watch parses from outside: API dates, list pages, job
//! details, output rows and configuration files. No input may panic; valid input must parse
//! to what it says. `PROPTEST_CASES` sets how many cases each runs (256 by default).

use std::path::Path;

use proptest::prelude::*;
use sdm_watch::config::Config;
use sdm_watch::domain::Row;
use sdm_watch::domain::time::parse_api_time;
use sdm_watch::sdm::{decode_detail, decode_page};
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A list row as the API might send it: the two fields it must have, anything else
/// optional, odd or unknown.
fn job_row() -> impl Strategy<Value = Value> {
    (
        "[0-9a-f-]{1,36}",
        prop_oneof![
            Just("running".to_owned()),
            Just("done".to_owned()),
            Just("error".to_owned()),
            Just("pending".to_owned()),
            "[a-z]{1,10}"
        ],
        prop::option::of(json_value()),
        prop::option::of(json_value()),
        prop::collection::btree_map("[a-z]{9,12}", json_value(), 0..3),
    )
        .prop_map(|(id, status, name_or_project, date, extra)| {
            let mut row = json!({ "id": id, "status": status });
            if let Some(value) = name_or_project {
                row["project"] = value;
            }
            if let Some(Value::String(date)) = date {
                row["creation_date"] = json!(date);
            }
            for (key, value) in extra {
                row[key] = value;
            }
            row
        })
}

proptest! {
    #[test]
    fn api_times_never_panic(text in ".{0,40}") {
        let _ = parse_api_time(&text);
    }

    #[test]
    fn api_times_with_any_fraction_parse_exactly(
        seconds in 0i64..4_102_444_800, digits in 0usize..=9, fraction in 0u32..1_000_000_000,
    ) {
        let base = time::OffsetDateTime::from_unix_timestamp(seconds).unwrap();
        let stem = base.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")).unwrap();
        let fraction_text = format!("{fraction:09}")[..digits].to_owned();
        let text = if digits == 0 { format!("{stem}Z") } else { format!("{stem}.{fraction_text}Z") };
        let parsed = parse_api_time(&text).expect("parses");
        let nanos: i64 = if digits == 0 { 0 } else { format!("{fraction_text:0<9}").parse().unwrap() };
        prop_assert_eq!(parsed, base + time::Duration::nanoseconds(nanos));
    }

    #[test]
    fn list_pages_parse_whatever_else_the_rows_hold(rows in prop::collection::vec(job_row(), 0..6), next in prop::option::of("[a-z:/?=&0-9.]{0,30}")) {
        let body = json!({ "count": rows.len(), "next": next, "previous": null, "results": rows });
        let page = decode_page(body.to_string().as_bytes()).expect("a page with id and status per row parses");
        prop_assert_eq!(page.results.len(), rows.len());
        for (job, row) in page.results.iter().zip(&rows) {
            prop_assert_eq!(&job.id, row["id"].as_str().unwrap());
            prop_assert_eq!(job.status.as_str(), row["status"].as_str().unwrap());
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(value in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_page(value.to_string().as_bytes());
        let _ = decode_detail(value.to_string().as_bytes());
        let _ = serde_json::from_value::<Vec<Row>>(value);
        let _ = decode_page(&bytes);
        let _ = decode_detail(&bytes);
    }

    #[test]
    fn output_summaries_match_the_rows(rows in prop::collection::vec(prop::collection::btree_map("[a-z]{1,4}", json_value(), 0..5), 0..20), garbage in prop::collection::vec(any::<u8>(), 0..100)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.json");
        let rows: Vec<Row> = rows.into_iter().map(|m| m.into_iter().collect()).collect();
        std::fs::write(&path, serde_json::to_vec(&rows).unwrap()).unwrap();
        let (count, columns) = sdm_watch::output::summarise(&path).unwrap();
        prop_assert_eq!(count as usize, rows.len());
        prop_assert_eq!(columns, sdm_watch::rows::columns(&rows));
        std::fs::write(&path, &garbage).unwrap();
        let _ = sdm_watch::output::summarise(&path);
    }

    #[test]
    fn config_files_never_panic(text in ".{0,200}") {
        let _ = Config::from_toml(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn one_odd_value_in_a_valid_config_is_accepted_or_named(
        section in prop_oneof![Just("api"), Just("poll"), Just("retry"), Just("delivery"), Just("http"), Just("log"), Just("output"), Just("smtp")],
        key in prop_oneof![Just("timeout".to_owned()), Just("interval".to_owned()), Just("page_size".to_owned()), Just("listen".to_owned()), Just("format".to_owned()), Just("format_id".to_owned()), Just("port".to_owned()), Just("multiplier".to_owned()), "[a-z_]{1,10}"],
        value in prop_oneof![Just(r#""30s""#.to_owned()), Just("0".to_owned()), Just("-1".to_owned()), Just("1e300".to_owned()), Just(r#""""#.to_owned()), Just("[]".to_owned()), Just("{}".to_owned()), Just("true".to_owned()), r#""[a-z0-9 .:]{0,10}""#],
    ) {
        let text = if section == "api" {
            format!("[api]\ntoken = \"t\"\n{key} = {value}\n")
        } else {
            format!("[api]\ntoken = \"t\"\n[{section}]\n{key} = {value}\n")
        };
        if let Err(error) = Config::from_toml(&text, Path::new("fuzz.toml")) {
            let message = error.to_string();
            prop_assert!(message.contains(section) || message.contains("fuzz.toml"), "{}", message);
        }
    }
}
