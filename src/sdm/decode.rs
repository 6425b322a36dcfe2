//! The one place that reads the API's shapes. Published copies of the jobs article and the
//! live service disagree in details (`count` as `100.0`, ids as numbers, `project` as an
//! object, error messages as DRF's objects and arrays), so every answer is read into a
//! lenient raw form first and turned into the typed model here, counting what it skipped.
//! A shape we did not expect must never stop monitoring: a row without a usable `id` or
//! `status` is skipped (counted and logged once), never a failed listing.

use std::collections::HashSet;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;
use tracing::warn;

use super::model::{Job, JobDetail, Page};
use crate::domain::{ProjectId, Status};
use crate::telemetry::API_ROWS_SKIPPED;

/// Why a row was skipped, the `reason` label of `sdm_watch_api_rows_skipped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The row is not a JSON object.
    NotAnObject,
    /// No `id`, or one that is neither a non-empty string nor an integer.
    NoId,
    /// No `status`, or one that is not a non-empty string.
    NoStatus,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NotAnObject => "not_an_object",
            Skip::NoId => "no_id",
            Skip::NoStatus => "no_status",
        }
    }
}

/// A listing page as sent: `results` is required (without it the answer is not a listing),
/// everything else is read leniently. A bare array of rows is a listing of one page.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawPage {
    Paged {
        #[serde(default)]
        count: Value,
        #[serde(default)]
        next: Value,
        results: Vec<Value>,
    },
    Bare(Vec<Value>),
}

/// Why an answer's body is not what its endpoint returns.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a listing of jobs ({0})")]
    NotAListing(serde_json::Error),
    #[error("{0}")]
    NotJson(serde_json::Error),
    #[error("`next` is neither a link nor null: {0}")]
    BadNext(Value),
    #[error("the job's detail has no usable `status`")]
    NoStatus,
}

/// A page of `GET jobs/`, or why the body is not one. Skipped rows are counted and logged.
pub fn page(body: &[u8]) -> Result<Page, DecodeError> {
    let raw: RawPage = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => DecodeError::NotAListing(e),
        _ => DecodeError::NotJson(e),
    })?;
    let (count, next, rows) = match raw {
        RawPage::Paged {
            count,
            next,
            results,
        } => (count, next, results),
        RawPage::Bare(rows) => (Value::Null, Value::Null, rows),
    };
    let next = match next {
        Value::Null => None,
        Value::String(link) if link.trim().is_empty() => None,
        Value::String(link) => Some(link.trim().to_owned()),
        other => return Err(DecodeError::BadNext(other)),
    };
    let mut results = Vec::with_capacity(rows.len());
    let mut skips = 0;
    for row in rows {
        match job(row) {
            Ok(job) => results.push(job),
            Err((skip, key)) => {
                skipped(skip, &key);
                skips += 1;
            }
        }
    }
    Ok(Page {
        count: count_of(&count),
        next,
        results,
        skipped: skips,
    })
}

/// `GET jobs/{id}/`: a usable `status` is required; `message` may be text, or a DRF error
/// object or array, shown as text.
pub fn detail(body: &[u8]) -> Result<JobDetail, DecodeError> {
    let raw: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(DecodeError::NotJson)?;
    let mut extra = raw;
    let status = extra
        .remove("status")
        .and_then(|status| status_of(&status))
        .ok_or(DecodeError::NoStatus)?;
    let step = extra.remove("step").filter(|step| !step.is_null());
    let message = extra
        .remove("message")
        .and_then(|message| text_of(&message))
        .map(bounded);
    Ok(JobDetail {
        status,
        step,
        message,
        extra,
    })
}

/// One list row into a [`Job`], or why it was skipped and what names it in the log.
fn job(row: Value) -> Result<Job, (Skip, String)> {
    let Value::Object(mut row) = row else {
        return Err((Skip::NotAnObject, preview(&row)));
    };
    let id = row.get("id").and_then(id_of);
    let Some(id) = id else {
        let key = row
            .get("name")
            .and_then(text_of)
            .unwrap_or_else(|| preview(&Value::Object(row.clone())));
        return Err((Skip::NoId, key));
    };
    let Some(status) = row.get("status").and_then(status_of) else {
        return Err((Skip::NoStatus, id));
    };
    let mut take = |key: &str| row.remove(key).filter(|value| !value.is_null());
    Ok(Job {
        name: take("name").as_ref().and_then(text_of),
        creation_date: take("creation_date").as_ref().and_then(date_of),
        completion_date: take("completion_date").as_ref().and_then(date_of),
        project: take("project").as_ref().and_then(project_of),
        step: take("step"),
        message: take("message").as_ref().and_then(text_of).map(bounded),
        id,
        status,
    })
}

/// `count`: an integer, a number with a zero fraction (`100.0`) or a numeric string;
/// anything else is unknown, and the listing is then read by `next` alone.
fn count_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(text) => count_of(&serde_json::from_str(text.trim()).ok()?),
        _ => None,
    }
}

/// An id: a non-empty string, or an integer (kept as its decimal text).
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) if number.is_i64() || number.is_u64() => Some(number.to_string()),
        _ => None,
    }
}

fn status_of(value: &Value) -> Option<Status> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(Status::parse(text.trim())),
        _ => None,
    }
}

/// `project`: a number, a numeric string, or an object with `id` (either of those).
fn project_of(value: &Value) -> Option<ProjectId> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        Value::Object(object) => object.get("id").and_then(project_of),
        _ => None,
    }
}

/// A date is kept as the API's text (alerts echo it); one that does not read as a date is
/// unknown, not an error. [`crate::domain::time::parse_api_time`] reads the text later.
fn date_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if crate::domain::time::parse_api_time(text).is_some() => {
            Some(text.trim().to_owned())
        }
        _ => None,
    }
}

/// Text for people: a string as it is; a DRF error array as its items joined by `; `; a
/// DRF error object as `field: text` joined by `; `, where the generic keys (`detail`,
/// `message`, `non_field_errors`, `error`) show their text alone. Numbers and booleans as
/// written; `null` and empty text are no text.
pub fn text_of(value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(text_of)
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(fields) => fields
            .iter()
            .filter_map(|(key, value)| {
                let text = text_of(value)?;
                Some(match key.as_str() {
                    "detail" | "message" | "non_field_errors" | "error" => text,
                    _ => format!("{key}: {text}"),
                })
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// The longest error message kept: far more than anyone reads in an alert, and what keeps
/// a huge one (megabytes, as a broken import can produce) from being copied into every
/// channel's alert and the store.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// `text`, cut at a character boundary to [`MAX_MESSAGE_BYTES`] with a note of how much was
/// left out.
fn bounded(text: String) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}... ({} more bytes not kept by sdm-watch)",
        &text[..end],
        text.len() - end
    )
}

/// Keys (job, reason) already logged: a row that keeps coming back broken is logged once.
/// Bounded, so that a flood of broken rows cannot grow it without end.
static LOGGED: Mutex<Option<HashSet<(String, Skip)>>> = Mutex::new(None);
const LOGGED_AT_MOST: usize = 10_000;

fn skipped(skip: Skip, key: &str) {
    metrics::counter!(API_ROWS_SKIPPED, "reason" => skip.as_str()).increment(1);
    let mut logged = LOGGED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let logged = logged.get_or_insert_with(HashSet::new);
    if logged.len() < LOGGED_AT_MOST && logged.insert((key.to_owned(), skip)) {
        warn!(row = %key, reason = skip.as_str(), "skipped a row of the jobs listing that cannot be read; it is counted in sdm_watch_api_rows_skipped_total");
    }
}

/// The start of a value, for a log line about it.
fn preview(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(row: &str) -> Result<Job, Skip> {
        job(serde_json::from_str(row).unwrap()).map_err(|(skip, _)| skip)
    }

    #[test]
    fn count_reads_integers_zero_fractions_and_numeric_text() {
        for (text, count) in [
            ("100", Some(100)),
            ("100.0", Some(100)),
            ("\"60\"", Some(60)),
            ("\" 60.0 \"", Some(60)),
            ("1e2", Some(100)),
            ("100.5", None),
            ("-1", None),
            ("\"many\"", None),
            ("null", None),
            ("[3]", None),
        ] {
            assert_eq!(
                count_of(&serde_json::from_str(text).unwrap()),
                count,
                "{text}"
            );
        }
    }

    #[test]
    fn a_page_with_a_float_count_and_odd_rows_reads() {
        let page = page(
            br#"{"count": 60.0, "next": "https://x/api/v1/jobs/?page=2", "results": [
                {"id": 42, "status": "done", "project": {"id": "17"}, "extra": {"a": 1}},
                {"id": "b", "status": "running", "project": "18",
                 "creation_date": "2022-04-14T10:48:37+02:00"},
                {"name": "no id", "status": "done"},
                {"id": "c"},
                {"id": "d", "status": 3},
                "not a row"
            ]}"#,
        )
        .unwrap();
        assert_eq!(page.count, Some(60));
        assert_eq!(page.next.as_deref(), Some("https://x/api/v1/jobs/?page=2"));
        let ids: Vec<&str> = page.results.iter().map(|job| job.id.as_str()).collect();
        assert_eq!(ids, ["42", "b"]);
        assert_eq!(page.results[0].project, Some(17));
        assert_eq!(page.results[1].project, Some(18));
        assert!(page.results[1].created_at().is_some());
    }

    #[test]
    fn rows_without_a_usable_id_or_status_are_skipped_with_their_reason() {
        assert_eq!(one(r#"{"status": "done"}"#).unwrap_err(), Skip::NoId);
        assert_eq!(
            one(r#"{"id": "", "status": "done"}"#).unwrap_err(),
            Skip::NoId
        );
        assert_eq!(
            one(r#"{"id": 1.5, "status": "done"}"#).unwrap_err(),
            Skip::NoId
        );
        assert_eq!(one(r#"{"id": "a"}"#).unwrap_err(), Skip::NoStatus);
        assert_eq!(
            one(r#"{"id": "a", "status": null}"#).unwrap_err(),
            Skip::NoStatus
        );
        assert_eq!(one(r#"[1]"#).unwrap_err(), Skip::NotAnObject);
        assert_eq!(
            one(r#"{"id": 7, "status": "queued"}"#).unwrap().status,
            Status::Other("queued".into())
        );
    }

    #[test]
    fn dates_that_do_not_read_are_unknown_not_errors() {
        let job = one(
            r#"{"id": "a", "status": "done", "creation_date": "yesterday",
                         "completion_date": 1700000000}"#,
        )
        .unwrap();
        assert_eq!(job.creation_date, None);
        assert_eq!(job.completion_date, None);
        let job = one(r#"{"id": "a", "status": "done", "creation_date": "2022-04-14T08:48:37"}"#)
            .unwrap();
        assert_eq!(job.creation_date.as_deref(), Some("2022-04-14T08:48:37"));
    }

    #[test]
    fn messages_in_drf_shapes_read_as_text() {
        for (body, message) in [
            (
                r#"{"status": "error", "message": "Column 'sku' missing"}"#,
                Some("Column 'sku' missing"),
            ),
            (
                r#"{"status": "error", "message": ["Column 'sku' missing"]}"#,
                Some("Column 'sku' missing"),
            ),
            (
                r#"{"status": "error", "message": {"detail": "Boom"}}"#,
                Some("Boom"),
            ),
            (
                r#"{"status": "error", "message": {"sku": ["missing", "empty"], "non_field_errors": ["bad file"]}}"#,
                Some("sku: missing; empty; bad file"),
            ),
            (r#"{"status": "error", "message": null}"#, None),
            (r#"{"status": "error", "message": []}"#, None),
            (r#"{"status": "error", "message": 404}"#, Some("404")),
        ] {
            assert_eq!(
                detail(body.as_bytes()).unwrap().message.as_deref(),
                message,
                "{body}"
            );
        }
        assert!(detail(br#"{"step": {"id": 1}}"#).is_err());
        let huge = format!(
            r#"{{"status": "error", "message": "{}é"}}"#,
            "x".repeat(3 * MAX_MESSAGE_BYTES)
        );
        let kept = detail(huge.as_bytes()).unwrap().message.unwrap();
        assert!(
            kept.starts_with("xxx") && kept.ends_with("more bytes not kept by sdm-watch)"),
            "{}",
            &kept[kept.len() - 60..]
        );
        assert!(kept.len() < MAX_MESSAGE_BYTES + 60);
        assert!(detail(b"[]").is_err());
    }

    #[test]
    fn a_bare_array_is_one_page_and_a_body_without_results_is_not_a_listing() {
        let page = page(br#"[{"id": "a", "status": "done"}]"#).unwrap();
        assert_eq!((page.count, page.next, page.results.len()), (None, None, 1));
        assert!(super::page(br#"{"count": 1}"#).is_err());
        assert!(super::page(b"<html>").is_err());
        assert!(super::page(br#"{"results": [], "next": 3}"#).is_err());
    }
}
