//! Who holds the organisations' leases among replicas on PostgreSQL, read from outside,
//! as the sharing test and the benchmark check it.

use std::collections::HashMap;
use std::time::Duration;

use sdm_watch::daemon::leader::lease_of;
use sdm_watch::store::postgres::{self, PgSettings, lease};

/// The pid in a replica's name (`host-PID-random`).
pub fn pid_of(replica: &str) -> Option<u32> {
    replica.rsplit('-').nth(1)?.parse().ok()
}

/// How many organisations each replica (by pid) holds.
pub fn counts(held: &HashMap<String, u32>) -> HashMap<u32, usize> {
    let mut counts = HashMap::new();
    for pid in held.values() {
        *counts.entry(*pid).or_default() += 1;
    }
    counts
}

/// A connection to the replicas' database, and the organisations they share.
pub struct Leases {
    pub client: tokio_postgres::Client,
    orgs: Vec<String>,
}

impl Leases {
    /// Connects to `url` and migrates, so that the tables are there before any replica.
    pub async fn connect(url: &str, orgs: &[String]) -> Leases {
        let settings = PgSettings::parse(url, None).expect("a test database URL");
        let mut client = postgres::connect(&settings)
            .await
            .expect("PostgreSQL answers");
        postgres::migrate(&mut client)
            .await
            .expect("the schema migrates");
        Leases {
            client,
            orgs: orgs.to_vec(),
        }
    }

    /// Each organisation whose lease is in force, and the pid of the replica holding it.
    pub async fn holders(&self) -> HashMap<String, u32> {
        let names: Vec<String> = self.orgs.iter().map(|org| lease_of(org)).collect();
        let live = lease::live_holders(&self.client, &names)
            .await
            .expect("the leases read");
        live.into_iter()
            .filter_map(|(name, holder)| {
                let org = self.orgs.iter().find(|org| lease_of(org) == name)?;
                Some((org.clone(), pid_of(&holder)?))
            })
            .collect()
    }

    /// The pids of the replicas that said they are alive, however long ago.
    pub async fn present(&self) -> Vec<u32> {
        let rows = self
            .client
            .query("SELECT id FROM replicas", &[])
            .await
            .expect("the replicas read");
        rows.iter().filter_map(|row| pid_of(row.get(0))).collect()
    }

    /// Waits until every organisation is held, by exactly `pids`, each holding between
    /// floor(organisations / replicas) and ceil(organisations / replicas) + 1, the bound
    /// the replicas promise; panics after `timeout`.
    pub async fn wait_for_spread(&self, pids: &[u32], timeout: Duration) -> HashMap<String, u32> {
        let n = self.orgs.len();
        let range = n / pids.len()..=n.div_ceil(pids.len()) + 1;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let held = self.holders().await;
            let counts = counts(&held);
            let spread = held.len() == n
                && counts.len() == pids.len()
                && pids
                    .iter()
                    .all(|pid| range.contains(counts.get(pid).unwrap_or(&0)));
            if spread {
                return held;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not spread over {pids:?}, {range:?} each, after {timeout:?}: {} of {} held, {counts:?}",
                held.len(),
                self.orgs.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the first (silent) cycle of each organisation is done.
    pub async fn wait_for_first_cycles(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let keys: Vec<String> = self
            .orgs
            .iter()
            .map(|org| format!("first_cycle_done@{org}"))
            .collect();
        loop {
            let done: i64 = self
                .client
                .query_one("SELECT count(*) FROM meta WHERE key = ANY($1)", &[&keys])
                .await
                .expect("meta reads")
                .get(0);
            if done == keys.len() as i64 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{done} of {} first cycles done after {timeout:?}",
                keys.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
