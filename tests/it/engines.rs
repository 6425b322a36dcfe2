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
