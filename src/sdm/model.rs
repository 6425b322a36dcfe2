//! What the SDM API returns, parsed tolerantly: unknown fields are ignored, every field the
//! article does not promise is optional, and dates keep the exact text the API sent.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A job's status. The API documents four; anything else is kept as sent rather than
/// failing a whole page.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Running,
    Done,
    Error,
    Pending,
    Other(String),
}

impl Status {
    pub const KNOWN: [Status; 4] = [
        Status::Running,
        Status::Done,
        Status::Error,
        Status::Pending,
    ];

    pub fn parse(text: &str) -> Status {
        match text {
            "running" => Status::Running,
            "done" => Status::Done,
            "error" => Status::Error,
            "pending" => Status::Pending,
            other => Status::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Running => "running",
            Status::Done => "done",
            Status::Error => "error",
            Status::Pending => "pending",
            Status::Other(text) => text,
        }
    }

    /// Running and pending jobs can still change; done and error are final.
    pub fn is_active(&self) -> bool {
        matches!(self, Status::Running | Status::Pending)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Status::parse(&text))
    }
}

/// A project id. The API shows integers; a numeric string is accepted too.
pub type ProjectId = i64;

fn project_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ProjectId>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(ProjectId),
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Raw>::deserialize(deserializer)? {
        Some(Raw::Number(id)) => Some(id),
        Some(Raw::Text(text)) => text.trim().parse().ok(),
        Some(Raw::Other(_)) | None => None,
    })
}

/// One job as the list endpoint returns it (the detail endpoint fills in `step` and `message`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Job {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: Status,
    /// The API's text, kept verbatim: alerts echo it, and [`parse_api_time`] reads it.
    #[serde(default)]
    pub creation_date: Option<String>,
    #[serde(default)]
    pub completion_date: Option<String>,
    #[serde(default, deserialize_with = "project_id")]
    pub project: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Job {
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        self.creation_date.as_deref().and_then(parse_api_time)
    }
}

/// `GET jobs/{id}/`: the article promises only `status`, `step` and, on error, `message`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct JobDetail {
    pub status: Status,
    #[serde(default)]
    pub step: Option<serde_json::Value>,
    #[serde(default)]
    pub message: Option<String>,
    /// Whatever else the API sent, shown by `jobs show` and never relied upon.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One page of `GET jobs/`.
#[derive(Clone, Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub next: Option<String>,
    pub results: Vec<Job>,
}

/// One output row: column name to value, with empty columns left out by the API.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// Reads the API's ISO 8601 dates: any number of fraction digits (`.12Z`, `.109159Z`,
/// none), `Z` or an offset; a date without an offset is taken as UTC.
pub fn parse_api_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    // No offset: RFC 3339 insists on one, so read it as UTC.
    let with_zone = format!("{text}Z");
    OffsetDateTime::parse(&with_zone, &Rfc3339).ok()
}

/// Microseconds since the Unix epoch: how the store keeps creation dates.
pub fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub fn from_micros(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1_000).ok()
}

/// Formats a time the way the API's filters take it, with microseconds like the API's own dates.
pub fn format_api_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    at.format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_with_zero_to_nine_fraction_digits_parse() {
        let base = parse_api_time("2022-04-14T08:48:37Z").unwrap();
        for (text, nanos) in [
            ("2022-04-14T08:48:37Z", 0),
            ("2022-04-14T08:48:37.1Z", 100_000_000),
            ("2022-04-14T08:48:37.12Z", 120_000_000),
            ("2022-04-14T08:48:37.109159Z", 109_159_000),
            ("2022-04-14T08:48:37.123456789Z", 123_456_789),
            ("2022-04-14T08:48:37.5", 500_000_000),
            ("2022-04-14T10:48:37.5+02:00", 500_000_000),
        ] {
            let at = parse_api_time(text).unwrap_or_else(|| panic!("{text} did not parse"));
            assert_eq!((at - base).whole_nanoseconds(), nanos, "{text}");
        }
        assert_eq!(parse_api_time("yesterday"), None);
    }

    #[test]
    fn formatted_times_read_back_exactly_to_the_microsecond() {
        let at = parse_api_time("2022-04-14T08:48:37.109159Z").unwrap();
        assert_eq!(format_api_time(at), "2022-04-14T08:48:37.109159Z");
        assert_eq!(parse_api_time(&format_api_time(at)), Some(at));
    }

    #[test]
    fn list_rows_tolerate_missing_unknown_and_odd_fields() {
        let page: Page = serde_json::from_str(
            r#"{"count": 2, "next": null, "previous": null, "results": [
                {"id": "a", "name": "Job 1", "status": "done",
                 "creation_date": "2022-04-14T08:48:37.109159Z",
                 "completion_date": "2022-04-17T09:53:32.12Z", "surprise": [1, 2]},
                {"id": "b", "status": "queued", "completion_date": null, "project": "17"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(page.results[0].status, Status::Done);
        assert_eq!(page.results[0].project, None);
        assert_eq!(page.results[1].status, Status::Other("queued".into()));
        assert_eq!(page.results[1].name, None);
        assert_eq!(page.results[1].project, Some(17));
    }

    #[test]
    fn detail_with_only_status_parses() {
        let detail: JobDetail = serde_json::from_str(r#"{"status": "running"}"#).unwrap();
        assert_eq!(detail.status, Status::Running);
        assert_eq!(detail.message, None);
        let detail: JobDetail = serde_json::from_str(
            r#"{"status": "error", "step": {"id": 3}, "message": "Column 'sku' missing"}"#,
        )
        .unwrap();
        assert_eq!(detail.message.as_deref(), Some("Column 'sku' missing"));
    }
}
