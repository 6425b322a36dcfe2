//! PostgreSQL, for several replicas sharing one database (issue 16, in progress): the
//! connection, versioned migrations run once under a lock by whichever replica comes
//! first, leadership as a lease with a fencing token (`lease`), and the outbox with
//! claims so that any replica delivers and none sends what another is sending (`outbox`). The SQLite store is
//! still the only one the daemon runs on; README, "Running several replicas", says what
//! is there and what is not yet.
//!
//! The client is `tokio-postgres`: maintained, async on the tokio runtime the daemon
//! already runs, pure Rust (no libpq, no OpenSSL), with TLS through rustls when added.

pub mod lease;
pub mod outbox;

use tokio_postgres::{Client, NoTls};

/// What went wrong with the database, with the server's words.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(
        "the database has sdm-watch schema version {found}, newer than this sdm-watch understands ({supported}); \
         it was left untouched: run the newer sdm-watch"
    )]
    NewerSchema { found: i64, supported: i64 },
}

/// Connects to `url` (`postgres://user@host/db`), driving the connection on a task of
/// its own; the client fails once that connection is gone.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(error = %error, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// The schema, one migration a version; never edit a released one, add one at the end.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sdm_watch_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"#,
    r#"
-- The alert outbox, as SQLite's `alerts`, with a claim: who is sending it, until when.
CREATE TABLE sdm_watch_alerts (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'silenced')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT,
    finished_ms     BIGINT,
    grouped         BOOLEAN NOT NULL DEFAULT false,
    digest_id       TEXT,
    silence_id      TEXT,
    age_from_ms     BIGINT NOT NULL,
    claimed_by      TEXT,
    claim_until     TIMESTAMPTZ
);
CREATE INDEX sdm_watch_alerts_due ON sdm_watch_alerts (state, grouped, next_attempt_ms);
"#,
];

pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// A key for `pg_advisory_xact_lock`: migrations run one replica at a time.
const MIGRATION_LOCK: i64 = 0x5344_4d57_4154_4348; // "SDMWATCH"

/// Brings the schema to [`LATEST`] under an advisory lock, so that replicas starting
/// together migrate once; a database from a newer sdm-watch is refused untouched.
/// Returns the version found before.
pub async fn migrate(client: &mut Client) -> Result<i64, PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sdm_watch_schema (version BIGINT NOT NULL);
         INSERT INTO sdm_watch_schema (version)
         SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM sdm_watch_schema);",
    )
    .await?;
    let found: i64 = tx
        .query_one("SELECT version FROM sdm_watch_schema", &[])
        .await?
        .get(0);
    if found > LATEST {
        return Err(PgError::NewerSchema {
            found,
            supported: LATEST,
        });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.batch_execute(sql).await?;
    }
    tx.execute("UPDATE sdm_watch_schema SET version = $1", &[&LATEST])
        .await?;
    tx.commit().await?;
    Ok(found)
}
