//! Silences: for a while, alerts that match one are recorded as silenced and never sent.
//! Matchers of one kind are alternatives (project 17 or 18); kinds must all match (project
//! 17 and event error); a silence with no matcher matches everything.

use std::borrow::Cow;

use serde::Serialize;

use super::StoreError;
use super::db::{Db, DbRow};
use crate::domain::{Event, ProjectId};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Silence {
    pub id: String,
    pub created_ms: i64,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub reason: String,
    pub projects: Vec<ProjectId>,
    pub jobs: Vec<String>,
    pub events: Vec<Event>,
    /// The organisations it silences (empty: all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<String>,
}

impl Silence {
    pub fn is_active(&self, at_ms: i64) -> bool {
        self.starts_ms <= at_ms && at_ms < self.ends_ms
    }

    /// Whether an alert about `event` of job `job_id` in `project` of `organisation`,
    /// queued at `at_ms`, is silenced by this.
    pub fn matches(
        &self,
        organisation: &str,
        job_id: &str,
        project: Option<ProjectId>,
        event: &Event,
        at_ms: i64,
    ) -> bool {
        self.is_active(at_ms)
            && (self.organisations.is_empty()
                || self.organisations.iter().any(|o| o == organisation))
            && (self.projects.is_empty() || project.is_some_and(|p| self.projects.contains(&p)))
            && (self.jobs.is_empty() || self.jobs.iter().any(|job| job == job_id))
            && (self.events.is_empty() || self.events.contains(event))
    }

    /// `project 17|18, event error`, or `everything`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let join = |values: Vec<String>| values.join("|");
        if !self.organisations.is_empty() {
            parts.push(format!("organisation {}", join(self.organisations.clone())));
        }
        if !self.projects.is_empty() {
            parts.push(format!(
                "project {}",
                join(self.projects.iter().map(ToString::to_string).collect())
            ));
        }
        if !self.jobs.is_empty() {
            parts.push(format!("job {}", join(self.jobs.clone())));
        }
        if !self.events.is_empty() {
            parts.push(format!(
                "event {}",
                join(self.events.iter().map(ToString::to_string).collect())
            ));
        }
        if parts.is_empty() {
            "everything".into()
        } else {
            parts.join(", ")
        }
    }
}

const COLUMNS: &str =
    "id, created_ms, starts_ms, ends_ms, reason, projects, jobs, events, organisations";

fn from_row(row: &DbRow) -> Result<Silence, StoreError> {
    let list = |index: usize| -> Result<String, StoreError> { row.get(index) };
    let events: Vec<String> = serde_json::from_str(&list(7)?).unwrap_or_default();
    Ok(Silence {
        id: row.get(0)?,
        created_ms: row.get(1)?,
        starts_ms: row.get(2)?,
        ends_ms: row.get(3)?,
        reason: row.get(4)?,
        projects: serde_json::from_str(&list(5)?).unwrap_or_default(),
        jobs: serde_json::from_str(&list(6)?).unwrap_or_default(),
        events: events.iter().map(|event| Event::parse(event)).collect(),
        organisations: serde_json::from_str(&list(8)?).unwrap_or_default(),
    })
}

pub fn insert(conn: &mut dyn Db, silence: &Silence) -> Result<(), StoreError> {
    let events: Vec<Cow<'_, str>> = silence.events.iter().map(Event::stored).collect();
    conn.execute(
        "INSERT INTO silences (id, created_ms, starts_ms, ends_ms, reason, projects, jobs, events,
                               organisations)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &[
            &silence.id,
            &silence.created_ms,
            &silence.starts_ms,
            &silence.ends_ms,
            &silence.reason,
            &json(&silence.projects),
            &json(&silence.jobs),
            &json(&events),
            &json(&silence.organisations),
        ],
    )?;
    Ok(())
}

/// Silences in force at `now_ms`.
pub fn active(conn: &mut dyn Db, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM silences WHERE starts_ms <= ?1 AND ends_ms > ?1 ORDER BY ends_ms"
        ),
        &[&now_ms],
        from_row,
    )
}

/// Silences that end after `after_ms` (active, or not over long), soonest end first.
pub fn ending_after(conn: &mut dyn Db, after_ms: i64) -> Result<Vec<Silence>, StoreError> {
    conn.query_map(
        &format!("SELECT {COLUMNS} FROM silences WHERE ends_ms > ?1 ORDER BY ends_ms"),
        &[&after_ms],
        from_row,
    )
}

/// Ends silence `id` at `now_ms`; false if there is none in force by that id.
pub fn end(conn: &mut dyn Db, id: &str, now_ms: i64) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE silences SET ends_ms = ?2 WHERE id = ?1 AND ends_ms > ?2",
        &[&id, &now_ms],
    )? == 1)
}

/// Forgets silences that ended before `before_ms`.
pub fn prune(conn: &mut dyn Db, before_ms: i64) -> Result<usize, StoreError> {
    conn.execute("DELETE FROM silences WHERE ends_ms < ?1", &[&before_ms])
}

/// A list stored as JSON text.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    fn silence(projects: Vec<ProjectId>, jobs: Vec<&str>, events: Vec<Event>) -> Silence {
        Silence {
            id: "sil".into(),
            created_ms: 0,
            starts_ms: 100,
            ends_ms: 200,
            reason: "test".into(),
            projects,
            jobs: jobs.into_iter().map(str::to_owned).collect(),
            events,
            organisations: Vec::new(),
        }
    }

    #[test]
    fn values_of_a_kind_are_alternatives_and_kinds_must_all_match() {
        let done = Event::from(Status::Done);
        let error = Event::from(Status::Error);
        let s = silence(vec![17, 18], vec![], vec![error.clone()]);
        assert!(s.matches("o", "a", Some(17), &error, 150));
        assert!(s.matches("o", "a", Some(18), &error, 150));
        assert!(
            !s.matches("o", "a", Some(19), &error, 150),
            "another project"
        );
        assert!(!s.matches("o", "a", None, &error, 150), "no project");
        assert!(!s.matches("o", "a", Some(17), &done, 150), "another event");
        assert!(
            !s.matches("o", "a", Some(17), &error, 99)
                && !s.matches("o", "a", Some(17), &error, 200)
        );
        let all = silence(vec![], vec![], vec![]);
        assert!(all.matches("o", "a", None, &done, 150));
        let job = silence(vec![], vec!["b"], vec![]);
        assert!(job.matches("o", "b", None, &Event::PendingReminder, 150));
        assert!(!job.matches("o", "a", None, &Event::PendingReminder, 150));
        let acme = Silence {
            organisations: vec!["acme".into()],
            ..silence(vec![], vec![], vec![])
        };
        assert!(acme.matches("acme", "a", None, &done, 150));
        assert!(
            !acme.matches("beta", "a", None, &done, 150),
            "another organisation"
        );
    }
}
