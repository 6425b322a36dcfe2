//! The store suites' engines: a store on SQLite and one on a real throwaway PostgreSQL,
//! and `both!`, which runs a check against each as two tests.

use sdm_watch::store::Store;
use sdm_watch::store::postgres::PgSettings;
use testkit::postgres::Postgres;

/// A store on each engine; the PostgreSQL server lives as long as the value.
pub enum Engine {
    Sqlite(tempfile::TempDir),
    Postgres(Postgres),
}

impl Engine {
    /// Whether claims are written to the store, for replicas to share (PostgreSQL); the
    /// one process on SQLite keeps them in memory.
    pub fn shares_claims(&self) -> bool {
        matches!(self, Engine::Postgres(_))
    }

    pub async fn open(&self) -> Store {
        match self {
            Engine::Sqlite(dir) => Store::open(&dir.path().join("state.db")).unwrap(),
            Engine::Postgres(pg) => Store::connect(&PgSettings::parse(&pg.url(), None).unwrap())
                .await
                .unwrap(),
        }
    }
}

pub fn sqlite() -> Engine {
    Engine::Sqlite(tempfile::tempdir().unwrap())
}

pub fn postgres() -> Engine {
    Engine::Postgres(Postgres::start())
}

/// Runs `$check` against both engines, as two tests.
macro_rules! both {
    ($name:ident, $check:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let engine = $crate::engines::sqlite();
                $check(&engine).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let engine = $crate::engines::postgres();
                $check(&engine).await;
            }
        }
    };
}

pub(crate) use both;

/// A PostgreSQL error keeps the server's SQLSTATE: `25006` (a read-only transaction, what
/// a standby answers a write with) can be told from any other failure.
#[tokio::test]
async fn a_postgresql_error_keeps_its_sqlstate() {
    use sdm_watch::store::StoreError;
    let engine = postgres();
    let store = engine.open().await;
    let error = store
        .run(|conn| {
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", &[])?;
            conn.execute("INSERT INTO meta (key, value) VALUES ('probe', '1')", &[])
        })
        .await
        .unwrap_err();
    match &error {
        StoreError::Postgres { code, message } => {
            assert_eq!(code.as_deref(), Some("25006"), "{message}");
            assert!(message.contains("read-only"), "{message}");
        }
        other => panic!("not a PostgreSQL error: {other}"),
    }
}
