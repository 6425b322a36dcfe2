//! The durable state: SQLite (WAL, `synchronous=FULL`) holding each job's last status,
//! changes waiting for details, the alert outbox with its digests and attempts, silences,
//! and the watcher's bookkeeping. Knows
//! nothing of HTTP or the SDM API; every call runs off the async runtime's threads.

pub mod bookkeeping;
pub mod digests;
pub mod gauges;
pub mod held;
pub mod jobs;
pub mod outbox;
pub mod postgres;
mod schema;
pub mod silences;
pub mod transitions;

pub use bookkeeping::Bookkeeping;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::domain::Status;

/// The store could not do what was asked. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the state file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the state file {} has schema version {found}, newer than this sdm-watch understands ({supported}); \
         it was left untouched: run the newer sdm-watch or point state.path elsewhere",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("state store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state store: corrupt data: {0}")]
    Corrupt(String),
    #[error("state store task failed: {0}")]
    Task(String),
}

/// A handle on the state file; clones share one connection, and one more, read-only,
/// for readers that must not wait for the writer (the status page).
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Option<Connection>>>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating it and its directory if missing) and migrates the state file. A file
    /// from a newer schema, or one that is not SQLite, is an error and is not modified.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        // Read the version before anything writes (WAL mode included), so that a newer or
        // foreign file is left exactly as it was.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(open_error)?;
        if version > schema::LATEST {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: version,
                supported: schema::LATEST,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        schema::migrate(&mut conn, version).map_err(open_error)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            reader: Arc::new(Mutex::new(None)),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection on a blocking thread.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `work` on a read-only connection of its own, on a blocking thread: with WAL,
    /// it reads the last committed state while the watcher and the worker write.
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.reader.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut reader = reader
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let conn = match reader.take() {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(|source| StoreError::Open {
                        path: path.clone(),
                        source,
                    })?;
                    conn.busy_timeout(std::time::Duration::from_secs(5))?;
                    conn
                }
            };
            work(reader.insert(conn))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// A status is stored as the API writes it.
impl ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Status {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str().map(Status::parse)
    }
}
