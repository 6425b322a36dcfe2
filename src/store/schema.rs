//! The schema and its migrations, versioned with `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry takes the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    name            TEXT,
    project         INTEGER,
    creation_date   TEXT,
    completion_date TEXT,
    -- creation_date parsed, in microseconds since the epoch, for the listing window
    created_us      INTEGER,
    message         TEXT,
    step            TEXT,
    first_seen_ms   INTEGER NOT NULL,
    changed_ms      INTEGER NOT NULL
);
CREATE INDEX jobs_by_status ON jobs (status, created_us);

CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    finished_ms     INTEGER
);
CREATE INDEX alerts_due ON alerts (state, next_attempt_ms);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
-- The jobs that can still change, read every cycle: a handful among a long history.
CREATE INDEX jobs_active ON jobs (created_us) WHERE status NOT IN ('done', 'error');
-- How many jobs were created between two dates, to choose between listing a range and
-- asking for jobs one by one.
CREATE INDEX jobs_by_created ON jobs (created_us);
"#,
    r#"
-- Only running and pending jobs are re-read every cycle (a status this version does not
-- know is settled, like done and error); jobs_by_status finds them.
DROP INDEX jobs_active;
-- 1 when `project` is known to be the job's (or, NULL, known to be none of the projects
-- the configuration names), learnt from a listing filtered by project.
ALTER TABLE jobs ADD COLUMN project_checked INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET project_checked = 1 WHERE project IS NOT NULL;
-- A job no listing showed that could not be looked up: retried on its own backoff.
ALTER TABLE jobs ADD COLUMN lookup_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lookup_next_ms INTEGER;
ALTER TABLE jobs ADD COLUMN lookup_error TEXT;

-- Changes that alert but wait for something only another request can tell (the error
-- message, the project, the output rows); written with the job's new state, turned into
-- alerts once complete or given up on.
CREATE TABLE held (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL,
    change          TEXT NOT NULL,
    held_ms         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT
);
CREATE INDEX held_by_job ON held (job_id);
"#,
    r#"
-- When the job entered its current status as the watcher saw it (ms, the watcher's clock),
-- and the reminders sent since: pending reminders count, 1 once running_long was sent.
ALTER TABLE jobs ADD COLUMN since_ms INTEGER;
ALTER TABLE jobs ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET since_ms = changed_ms WHERE status IN ('running', 'pending');

-- Alerts gain the 'silenced' state, the digest they went out in, the silence that muted
-- them, whether their channel gathers them into digests, and when `alerts retry` queued
-- them again (delivery.max_age counts from then).
CREATE TABLE alerts_v4 (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'silenced')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    finished_ms     INTEGER,
    grouped         INTEGER NOT NULL DEFAULT 0,
    digest_id       TEXT,
    silence_id      TEXT,
    requeued_ms     INTEGER
);
INSERT INTO alerts_v4 (id, channel, job_id, event, payload, created_ms, state, attempts,
                       next_attempt_ms, last_error, finished_ms)
    SELECT id, channel, job_id, event, payload, created_ms, state, attempts, next_attempt_ms,
           last_error, finished_ms FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_v4 RENAME TO alerts;
CREATE INDEX alerts_due ON alerts (state, grouped, next_attempt_ms);
CREATE INDEX alerts_by_created ON alerts (created_ms);
CREATE INDEX alerts_by_digest ON alerts (digest_id) WHERE digest_id IS NOT NULL;

-- A digest: a channel's alerts that go out as one message, with its own id, formed with
-- its members in one transaction before its first attempt.
CREATE TABLE digests (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    last_error      TEXT,
    finished_ms     INTEGER
);
CREATE INDEX digests_due ON digests (state, next_attempt_ms);

-- Every delivery attempt of an alert or a digest, for `alerts show`.
CREATE TABLE attempts (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    outcome  TEXT NOT NULL,
    error    TEXT
);
CREATE INDEX attempts_by_alert ON attempts (alert_id);

-- Silences: alerts matching one while it lasts are recorded as silenced and not sent.
CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    starts_ms  INTEGER NOT NULL,
    ends_ms    INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    projects   TEXT NOT NULL,
    jobs       TEXT NOT NULL,
    events     TEXT NOT NULL
);
CREATE INDEX silences_by_end ON silences (ends_ms);
"#,
    r#"
-- Status changes as the watcher saw them, for the status page: the last ones, and how
-- many an hour. Written with the job's new state; kept a week.
CREATE TABLE transitions (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id   TEXT NOT NULL,
    previous TEXT,
    status   TEXT NOT NULL,
    at_ms    INTEGER NOT NULL
);
CREATE INDEX transitions_by_time ON transitions (at_ms);
"#,
    r#"
-- Claims: which replica is sending an alert or a digest, until when (ms). Written only on
-- PostgreSQL, where replicas share the outbox; SQLite's one worker keeps its claims in
-- memory. The columns are here so that one set of statements serves both.
ALTER TABLE alerts ADD COLUMN claimed_by TEXT;
ALTER TABLE alerts ADD COLUMN claim_until_ms INTEGER;
ALTER TABLE digests ADD COLUMN claimed_by TEXT;
ALTER TABLE digests ADD COLUMN claim_until_ms INTEGER;
"#,
    r#"
-- Organisations: a job is an organisation's, and the same id in two organisations is two
-- jobs. Rows from before belong to the organisation [api] describes, 'default'.
CREATE TABLE jobs_v7 (
    organisation    TEXT NOT NULL DEFAULT 'default',
    id              TEXT NOT NULL,
    status          TEXT NOT NULL,
    name            TEXT,
    project         INTEGER,
    creation_date   TEXT,
    completion_date TEXT,
    created_us      INTEGER,
    message         TEXT,
    step            TEXT,
    first_seen_ms   INTEGER NOT NULL,
    changed_ms      INTEGER NOT NULL,
    project_checked INTEGER NOT NULL DEFAULT 0,
    lookup_attempts INTEGER NOT NULL DEFAULT 0,
    lookup_next_ms  INTEGER,
    lookup_error    TEXT,
    since_ms        INTEGER,
    reminders       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (organisation, id)
);
INSERT INTO jobs_v7 (id, status, name, project, creation_date, completion_date, created_us,
                     message, step, first_seen_ms, changed_ms, project_checked,
                     lookup_attempts, lookup_next_ms, lookup_error, since_ms, reminders)
    SELECT id, status, name, project, creation_date, completion_date, created_us, message,
           step, first_seen_ms, changed_ms, project_checked, lookup_attempts,
           lookup_next_ms, lookup_error, since_ms, reminders FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v7 RENAME TO jobs;
CREATE INDEX jobs_by_status ON jobs (organisation, status, created_us);
CREATE INDEX jobs_by_created ON jobs (organisation, created_us);

ALTER TABLE held ADD COLUMN organisation TEXT NOT NULL DEFAULT 'default';
ALTER TABLE transitions ADD COLUMN organisation TEXT NOT NULL DEFAULT 'default';
ALTER TABLE alerts ADD COLUMN organisation TEXT NOT NULL DEFAULT 'default';
-- A silence's organisations, as its projects: comma-separated, empty for all.
ALTER TABLE silences ADD COLUMN organisations TEXT NOT NULL DEFAULT '';
"#,
    r#"
-- Incidents: a job's condition (error, pending, running_long; the watcher's), opened by
-- its first alert, resolved when the condition ends; the channels it went to, with the
-- first alert on each. A resolution's alert goes out only after that one.
CREATE TABLE incidents (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation    TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    condition       TEXT NOT NULL,
    opened_ms       INTEGER NOT NULL,
    first_alert     TEXT NOT NULL,
    resolved_ms     INTEGER,
    resolved_status TEXT
);
CREATE INDEX incidents_of_job ON incidents (organisation, job_id, resolved_ms);
CREATE INDEX incidents_by_end ON incidents (resolved_ms);
CREATE TABLE incident_channels (
    incident INTEGER NOT NULL,
    channel  TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    PRIMARY KEY (incident, channel)
);
ALTER TABLE alerts ADD COLUMN after_alert TEXT;
"#,
    r#"
-- What reports and the adaptive running-long rule read of a job: when it completed (the
-- API's completion_date, parsed) and the time it spent pending in stretches that ended.
ALTER TABLE jobs ADD COLUMN completed_us INTEGER;
ALTER TABLE jobs ADD COLUMN pending_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_completion ON jobs (organisation, project, completed_us);
"#,
    r#"
-- Scheduled reports: each slot decided once (sent, or skipped as too late), by whichever
-- replica inserts its row first.
CREATE TABLE report_slots (
    name       TEXT NOT NULL,
    slot       TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    decided_ms INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    PRIMARY KEY (name, slot)
);
"#,
    r#"
-- The audit trail: what operators did, from the console or the command line.
CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    who     TEXT NOT NULL,
    address TEXT NOT NULL,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (at_ms);
"#,
];

pub const LATEST: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection, from: i64) -> rusqlite::Result<()> {
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Bookkeeping, Store, held, jobs};

    /// A state written by version 6 (before organisations) opens as the `default`
    /// organisation's: its jobs, held changes, alerts and bookkeeping, none lost.
    #[test]
    fn a_state_from_before_organisations_becomes_the_default_organisation_s() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..6] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 6).unwrap();
            conn.execute_batch(
                "INSERT INTO jobs (id, status, name, first_seen_ms, changed_ms, created_us)
                     VALUES ('job-1', 'running', 'Feed', 1, 1, 5);
                 INSERT INTO held (job_id, change, held_ms, next_attempt_ms)
                     VALUES ('job-1', '{}', 1, 1);
                 INSERT INTO alerts (id, channel, job_id, event, payload, created_ms, state,
                                     next_attempt_ms)
                     VALUES ('msg_1', 'ops', 'job-1', 'error', '{}', 1, 'pending', 1);
                 INSERT INTO meta (key, value) VALUES ('first_cycle_done', '1');
                 INSERT INTO meta (key, value) VALUES ('window_floor_us', '42');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let mut conn = store.conn.lock().unwrap();
        let conn = conn.as_mut();
        let version: i64 = conn
            .query_one("PRAGMA user_version", &[])
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(version, LATEST);
        let job = jobs::get(conn, "default", "job-1").unwrap().unwrap();
        assert_eq!(job.name.as_deref(), Some("Feed"));
        assert!(jobs::get(conn, "acme", "job-1").unwrap().is_none());
        assert_eq!(held::all(conn, "default").unwrap().len(), 1);
        let organisation: String = conn
            .query_one("SELECT organisation FROM alerts WHERE id = 'msg_1'", &[])
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(organisation, "default");
        let book = Bookkeeping::read(conn, "default").unwrap();
        assert!(book.first_cycle_done, "the first cycle is not done again");
        assert_eq!(book.floor_us, Some(42));
        assert!(!Bookkeeping::read(conn, "acme").unwrap().first_cycle_done);
    }
}
