//! The durable state: each job's last status, changes waiting for details, the alert
//! outbox with its digests, attempts and claims, silences, and the watcher's bookkeeping.
//! Its modules write their SQL once against [`Db`]; SQLite (WAL, `synchronous=FULL`, the
//! default, one process) or PostgreSQL (`postgres`, shared by replicas) carries it out.
//! Knows nothing of HTTP or the SDM API; every call runs off the async runtime's threads.

pub mod audit;
pub mod bookkeeping;
pub mod db;
pub mod digests;
pub mod gauges;
pub mod held;
pub mod history;
pub mod incidents;
pub mod inspect;
pub mod jobs;
pub mod outbox;
pub mod postgres;
pub mod reports;
mod schema;
pub mod silences;
pub mod transitions;

pub use bookkeeping::Bookkeeping;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

pub use db::{Db, Fence};

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
    #[error("state store: PostgreSQL: {message}")]
    Postgres {
        /// The server's own words, else the client's.
        message: String,
        /// The server's SQLSTATE, when it sent one (`25006`: a read-only transaction,
        /// as on a standby; `40001`: a serialization failure).
        code: Option<String>,
    },
    #[error(
        "the database has sdm-watch schema version {found}, newer than this sdm-watch understands ({supported}); \
         it was left untouched: run the newer sdm-watch"
    )]
    NewerDatabase { found: i64, supported: i64 },
    #[error("this replica no longer leads (lease {lease:?}, token {token}): nothing was committed")]
    Fenced { lease: String, token: i64 },
    #[error("state store: corrupt data: {0}")]
    Corrupt(String),
    #[error("state store task failed: {0}")]
    Task(String),
}

/// Where the store lives.
#[derive(Clone, Debug)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<postgres::PgSettings>),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(settings) => f.write_str(settings.shown()),
        }
    }
}

/// A handle on the store; clones share one connection, and one more for readers that
/// must not wait for the writer (the status page). A fenced handle (the leader's) commits
/// only while its lease holds.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Box<dyn Db>>>,
    reader: Arc<Mutex<Option<Box<dyn Db>>>>,
    location: Location,
    fence: Option<Arc<Mutex<Fence>>>,
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
            conn: Arc::new(Mutex::new(Box::new(conn))),
            reader: Arc::new(Mutex::new(None)),
            location: Location::Sqlite(path.to_owned()),
            fence: None,
        })
    }

    /// Connects to PostgreSQL and migrates its schema (once, whichever replica comes
    /// first). A database from a newer sdm-watch is an error and is not modified.
    pub async fn connect(settings: &postgres::PgSettings) -> Result<Store, StoreError> {
        let mut client = postgres::connect(settings).await?;
        postgres::migrate(&mut client).await?;
        drop(client);
        let settings = settings.clone();
        let handle = tokio::runtime::Handle::current();
        let location = Location::Postgres(Box::new(settings.clone()));
        let db = tokio::task::spawn_blocking(move || postgres::PgDb::connect(settings, handle))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(Store {
            conn: Arc::new(Mutex::new(Box::new(db))),
            reader: Arc::new(Mutex::new(None)),
            location,
            fence: None,
        })
    }

    /// Opens the store the configuration names: SQLite at `state.path` (opened and migrated
    /// on a blocking thread), or PostgreSQL.
    pub async fn open_configured(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Store::open(&path))
                    .await
                    .map_err(|join| StoreError::Task(join.to_string()))?
            }
            Location::Postgres(settings) => Store::connect(settings).await,
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// This handle, committing only while the lease in `fence` (kept current by the
    /// leadership loop) still leads (PostgreSQL; SQLite has one process and ignores it).
    pub fn fenced(&self, fence: Arc<Mutex<Fence>>) -> Store {
        Store {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Runs `work` on the connection on a blocking thread.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        let fence = self
            .fence
            .as_ref()
            .map(|cell| cell.lock().unwrap_or_else(|p| p.into_inner()).clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            conn.set_fence(fence);
            let result = work(conn.as_mut());
            conn.set_fence(None);
            if result.is_err() && conn.in_transaction() {
                // A statement failed inside a transaction its caller did not end.
                let _ = conn.rollback();
            }
            result
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `work` on a connection of its own, on a blocking thread: it reads the last
    /// committed state while the watcher and the worker write (SQLite: read-only, WAL).
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.reader.clone();
        let location = self.location.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut reader = reader
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let conn: Box<dyn Db> = match reader.take() {
                Some(conn) => conn,
                None => match location {
                    Location::Sqlite(path) => {
                        let conn = Connection::open_with_flags(
                            &path,
                            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                        )
                        .map_err(|source| StoreError::Open {
                            path: path.clone(),
                            source,
                        })?;
                        conn.busy_timeout(std::time::Duration::from_secs(5))?;
                        Box::new(conn)
                    }
                    Location::Postgres(settings) => {
                        Box::new(postgres::PgDb::connect(*settings, handle)?)
                    }
                },
            };
            work(reader.insert(conn).as_mut())
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}
