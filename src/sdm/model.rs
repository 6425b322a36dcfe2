//! The SDM API's answers as the rest of the code sees them, typed (`sdm::decode` reads the
//! API's shapes into them): every field the article does not promise is optional, and dates
//! keep the exact text the API sent.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::domain::time::parse_api_time;
use crate::domain::{ProjectId, Status};

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
    #[serde(default)]
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

    pub fn completed_at(&self) -> Option<OffsetDateTime> {
        self.completion_date.as_deref().and_then(parse_api_time)
    }
}

/// `GET jobs/{id}/`: the article promises only `status`, `step` and, on error, `message`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobDetail {
    pub status: Status,
    pub step: Option<serde_json::Value>,
    pub message: Option<String>,
    /// Whatever else the API sent, shown by `jobs show` and never relied upon.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One page of `GET jobs/`.
#[derive(Clone, Debug)]
pub struct Page {
    /// `None` when the API left it out or sent something unreadable.
    pub count: Option<u64>,
    pub next: Option<String>,
    pub results: Vec<Job>,
    /// Rows left out because they lack a usable `id` or `status`.
    pub skipped: u32,
}

/// The server's clock as its `Date` header last gave it, and when that answer arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerClock {
    pub date: OffsetDateTime,
    pub received: tokio::time::Instant,
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
}
