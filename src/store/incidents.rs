//! Incidents: an alert of a condition (a job in `error`, `pending` or running long; the
//! watcher failing) opens one for its job and condition, or joins the one open; the end of
//! the condition resolves it. Written in the transactions that queue the alerts and record
//! the statuses, so a restart neither forgets nor repeats one. Each incident keeps the
//! channels it was sent to, with the first alert on each, so that a resolution goes where
//! the incident went, after it. A resolved incident is kept 30 days.

use super::StoreError;
use super::db::Db;
use super::outbox::{Alert, AlertState};
use crate::domain::{Event, Status};

/// What an incident is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    Error,
    Pending,
    RunningLong,
    Watcher,
}

impl Condition {
    pub const ALL: [Condition; 4] = [
        Condition::Error,
        Condition::Pending,
        Condition::RunningLong,
        Condition::Watcher,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Error => "error",
            Condition::Pending => "pending",
            Condition::RunningLong => "running_long",
            Condition::Watcher => "watcher",
        }
    }

    pub fn parse(text: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The condition an alert opens: `error`, `pending` (and its reminders), `running_long`
    /// and `watcher.failing` do; `done`, `running` and `watcher.recovered` do not.
    pub fn opened_by(alert: &Alert) -> Option<Condition> {
        match &alert.event {
            Event::Entered(Status::Error) => Some(Condition::Error),
            Event::Entered(Status::Pending) | Event::PendingReminder => Some(Condition::Pending),
            Event::RunningLong => Some(Condition::RunningLong),
            Event::Watcher => is_failing(&alert.payload).then_some(Condition::Watcher),
            _ => None,
        }
    }

    /// Whether a job now in `status` has left the condition: `error` ends when a re-run is
    /// `done`, `pending` when the job leaves `pending`, running long when it stops
    /// running. The watcher's ends with `watcher.recovered`, not with a job's status.
    pub fn ended_by(self, status: &Status) -> bool {
        match self {
            Condition::Error => *status == Status::Done,
            Condition::Pending => *status != Status::Pending,
            Condition::RunningLong => *status != Status::Running,
            Condition::Watcher => false,
        }
    }
}

/// `watcher.failing`, not `watcher.recovered`.
fn is_failing(payload: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(payload)
        .is_ok_and(|body| body["type"] == "watcher.failing")
}

/// An incident that has just ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub seq: i64,
    pub organisation: String,
    pub job_id: String,
    pub condition: Condition,
    pub opened_ms: i64,
    /// Each channel it was sent to, and the first alert of it there.
    pub channels: Vec<(String, String)>,
}

/// One incident, open or resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub seq: i64,
    pub organisation: String,
    pub job_id: String,
    pub condition: Condition,
    pub opened_ms: i64,
    pub first_alert: String,
    pub resolved_ms: Option<i64>,
    /// The job's status that ended it (`recovered` for the watcher's).
    pub resolved_status: Option<String>,
}

/// Opens, or joins, the incident of each alert in `alerts` that opens one and goes out
/// (a silenced alert opens nothing: nobody was told).
pub fn open(conn: &mut dyn Db, alerts: &[Alert]) -> Result<(), StoreError> {
    for alert in alerts {
        let Some(condition) = Condition::opened_by(alert) else {
            continue;
        };
        if alert.state == AlertState::Silenced {
            continue;
        }
        let (org, job, cond) = (&alert.organisation, &alert.job_id, condition.as_str());
        let seq = match open_seq(conn, org, job, cond)? {
            Some(seq) => seq,
            None => {
                conn.execute(
                    "INSERT INTO incidents (organisation, job_id, condition, opened_ms, first_alert)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    &[org, job, &cond, &alert.created_ms, &alert.id],
                )?;
                open_seq(conn, org, job, cond)?.ok_or_else(|| {
                    StoreError::Corrupt("an incident just opened is not there".into())
                })?
            }
        };
        // The first alert on a channel is the one its resolution follows.
        conn.execute(
            "INSERT INTO incident_channels (incident, channel, alert_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (incident, channel) DO NOTHING",
            &[&seq, &alert.channel, &alert.id],
        )?;
    }
    Ok(())
}

fn open_seq(
    conn: &mut dyn Db,
    org: &str,
    job_id: &str,
    condition: &str,
) -> Result<Option<i64>, StoreError> {
    conn.query_opt(
        "SELECT seq FROM incidents
         WHERE organisation = ?1 AND job_id = ?2 AND condition = ?3 AND resolved_ms IS NULL",
        &[&org, &job_id, &condition],
    )?
    .map(|row| row.get(0))
    .transpose()
}

/// Whether `org` has any open incident (one indexed look, however many jobs a commit has).
pub fn any_open(conn: &mut dyn Db, org: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM incidents WHERE organisation = ?1 AND resolved_ms IS NULL LIMIT 1",
            &[&org],
        )?
        .is_some())
}

/// Resolves the open incidents of `org`'s job `job_id` whose condition `ended` says is
/// over, as of `now_ms`, by `status` (the job's, or `recovered`); returns them.
pub fn resolve(
    conn: &mut dyn Db,
    org: &str,
    job_id: &str,
    ended: &dyn Fn(Condition) -> bool,
    status: &str,
    now_ms: i64,
) -> Result<Vec<Resolved>, StoreError> {
    let open = conn.query(
        "SELECT seq, condition, opened_ms FROM incidents
         WHERE organisation = ?1 AND job_id = ?2 AND resolved_ms IS NULL ORDER BY seq",
        &[&org, &job_id],
    )?;
    let mut resolved = Vec::new();
    for row in open {
        let (seq, condition, opened_ms): (i64, String, i64) =
            (row.get(0)?, row.get(1)?, row.get(2)?);
        let Some(condition) = Condition::parse(&condition) else {
            continue;
        };
        if !ended(condition) {
            continue;
        }
        conn.execute(
            "UPDATE incidents SET resolved_ms = ?2, resolved_status = ?3 WHERE seq = ?1",
            &[&seq, &now_ms, &status],
        )?;
        let channels = conn
            .query(
                "SELECT channel, alert_id FROM incident_channels WHERE incident = ?1
                 ORDER BY channel",
                &[&seq],
            )?
            .iter()
            .map(|row| Ok((row.get(0)?, row.get(1)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        resolved.push(Resolved {
            seq,
            organisation: org.to_owned(),
            job_id: job_id.to_owned(),
            condition,
            opened_ms,
            channels,
        });
    }
    Ok(resolved)
}

/// How long a resolved incident is kept (open ones stay until they end).
pub const KEEP_MS: i64 = 30 * 24 * 3600 * 1000;

/// Forgets the incidents resolved more than [`KEEP_MS`] before `now_ms`.
pub fn prune(conn: &mut dyn Db, now_ms: i64) -> Result<(), StoreError> {
    let before = now_ms.saturating_sub(KEEP_MS);
    conn.execute(
        "DELETE FROM incident_channels WHERE incident IN
             (SELECT seq FROM incidents WHERE resolved_ms < ?1)",
        &[&before],
    )?;
    conn.execute("DELETE FROM incidents WHERE resolved_ms < ?1", &[&before])?;
    Ok(())
}

/// The incidents of `org` (every organisation's with `None`), open ones first, then the
/// most recently resolved, at most `limit`.
pub fn list(
    conn: &mut dyn Db,
    org: Option<&str>,
    limit: usize,
) -> Result<Vec<Incident>, StoreError> {
    select(conn, org, "1 = 1", limit)
}

/// An incident with the channels it went to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub incident: Incident,
    pub channels: Vec<String>,
}

/// What people are shown of `org`'s incidents (every organisation's with `None`): the open
/// ones, newest first, and the most recently resolved, at most `limit` of each.
pub fn overview(
    conn: &mut dyn Db,
    org: Option<&str>,
    limit: usize,
) -> Result<(Vec<Listed>, Vec<Listed>), StoreError> {
    let open = select(conn, org, "resolved_ms IS NULL", limit)?;
    let open = with_channels(conn, open)?;
    let resolved = select(conn, org, "resolved_ms IS NOT NULL", limit)?;
    Ok((open, with_channels(conn, resolved)?))
}

fn with_channels(conn: &mut dyn Db, incidents: Vec<Incident>) -> Result<Vec<Listed>, StoreError> {
    incidents
        .into_iter()
        .map(|incident| {
            let channels = channels(conn, incident.seq)?;
            Ok(Listed { incident, channels })
        })
        .collect()
}

fn select(
    conn: &mut dyn Db,
    org: Option<&str>,
    filter: &str,
    limit: usize,
) -> Result<Vec<Incident>, StoreError> {
    let rows = conn.query(
        &format!(
            "SELECT seq, organisation, job_id, condition, opened_ms, first_alert, resolved_ms,
                    resolved_status
             FROM incidents WHERE (CAST(?1 AS TEXT) IS NULL OR organisation = ?1) AND {filter}
             ORDER BY resolved_ms IS NOT NULL, COALESCE(resolved_ms, opened_ms) DESC, seq DESC
             LIMIT ?2"
        ),
        &[&org, &limit],
    )?;
    rows.iter()
        .map(|row| {
            let condition: String = row.get(3)?;
            Ok(Incident {
                seq: row.get(0)?,
                organisation: row.get(1)?,
                job_id: row.get(2)?,
                condition: Condition::parse(&condition).ok_or_else(|| {
                    StoreError::Corrupt(format!("{condition:?} is not an incident condition"))
                })?,
                opened_ms: row.get(4)?,
                first_alert: row.get(5)?,
                resolved_ms: row.get(6)?,
                resolved_status: row.get(7)?,
            })
        })
        .collect()
}

/// The channels incident `seq` was sent to, by name.
pub fn channels(conn: &mut dyn Db, seq: i64) -> Result<Vec<String>, StoreError> {
    conn.query_map(
        "SELECT channel FROM incident_channels WHERE incident = ?1 ORDER BY channel",
        &[&seq],
        |row| row.get(0),
    )
}

/// How many incidents are open, of every organisation.
pub fn count_open(conn: &mut dyn Db) -> Result<u64, StoreError> {
    let count: i64 = conn
        .query_opt(
            "SELECT COUNT(*) FROM incidents WHERE resolved_ms IS NULL",
            &[],
        )?
        .map(|row| row.get(0))
        .transpose()?
        .unwrap_or(0);
    Ok(u64::try_from(count).unwrap_or(0))
}

/// An incident as a channel was told of it: the payload of its first alert there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Told {
    pub organisation: String,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
    pub payload: String,
}

/// The incidents whose first alert on `channel` was delivered and that are open, or
/// resolved at `resolved_since_ms` or later: what an Alertmanager is told again.
pub fn told(
    conn: &mut dyn Db,
    channel: &str,
    resolved_since_ms: i64,
) -> Result<Vec<Told>, StoreError> {
    let rows = conn.query(
        "SELECT i.opened_ms, i.resolved_ms, a.payload, i.organisation
         FROM incidents i
         JOIN incident_channels c ON c.incident = i.seq AND c.channel = ?1
         JOIN alerts a ON a.id = c.alert_id
         WHERE (i.resolved_ms IS NULL OR i.resolved_ms >= ?2) AND a.state = 'delivered'
         ORDER BY i.seq",
        &[&channel, &resolved_since_ms],
    )?;
    rows.iter()
        .map(|row| {
            Ok(Told {
                opened_ms: row.get(0)?,
                resolved_ms: row.get(1)?,
                payload: row.get(2)?,
                organisation: row.get(3)?,
            })
        })
        .collect()
}
