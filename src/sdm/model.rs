//! What the SDM API returns, parsed tolerantly: unknown fields are ignored, every field the
//! article does not promise is optional, and dates keep the exact text the API sent.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::domain::time::parse_api_time;
use crate::domain::{ProjectId, Status};

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

/// A job shown twice (a listing shifted under the server while it was read): the last
/// copy wins, in the place of the first.
pub fn last_copies(jobs: Vec<Job>) -> Vec<Job> {
    let mut at: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(jobs.len());
    let mut kept: Vec<Job> = Vec::with_capacity(jobs.len());
    for job in jobs {
        match at.get(&job.id) {
            Some(&index) => kept[index] = job,
            None => {
                at.insert(job.id.clone(), kept.len());
                kept.push(job);
            }
        }
    }
    kept
}

/// A job's URL: `<base>jobs/<id>/`, then `rest` (`data/3`), each segment escaped.
pub fn job_url(base: &Url, id: &str, rest: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments
            .pop_if_empty()
            .push("jobs")
            .push(id)
            .extend(rest)
            .push("");
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_copy_of_a_job_wins_in_the_place_of_the_first() {
        let job = |id: &str, status: Status| Job {
            id: id.into(),
            name: None,
            status,
            creation_date: None,
            completion_date: None,
            project: None,
            step: None,
            message: None,
        };
        let kept = last_copies(vec![
            job("a", Status::Running),
            job("b", Status::Running),
            job("a", Status::Done),
        ]);
        let kept: Vec<(&str, &Status)> = kept.iter().map(|j| (j.id.as_str(), &j.status)).collect();
        assert_eq!(kept, [("a", &Status::Done), ("b", &Status::Running)]);
    }

    #[test]
    fn job_urls_escape_the_id() {
        let base = Url::parse("https://sdm.example/api/v1/").unwrap();
        assert_eq!(
            job_url(&base, "a/b", &["data", "3"]).as_str(),
            "https://sdm.example/api/v1/jobs/a%2Fb/data/3/"
        );
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
