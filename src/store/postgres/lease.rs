//! Leadership among replicas: one row per lease, holding its holder, a fencing token and
//! when it expires, all by the database's clock (replicas' clocks may disagree).
//!
//! - A replica takes a lease that is free or expired with a new, higher token; it extends
//!   its own without changing the token; nobody takes a live lease from its holder.
//! - Every commit of a leader's work calls [`fence`] in the same transaction: it checks
//!   that the token still leads and holds the row `FOR SHARE` until the commit, so a
//!   takeover (an `UPDATE` of that row) waits for a commit in flight, and a leader that
//!   lost its lease (paused, cut off) commits nothing after another took over.

use std::time::Duration;

use tokio_postgres::{Client, GenericClient};

use crate::store::StoreError;

/// A lease this replica holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub token: i64,
    /// Unix milliseconds, by the database's clock.
    pub expires_ms: i64,
}

/// Who holds a lease now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub holder: String,
    pub token: i64,
    pub expires_ms: i64,
    /// Whether it is still in force.
    pub live: bool,
}

/// Why a commit was refused: this replica no longer leads.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error("the lease {name:?} is no longer held with token {token}: another replica leads")]
    Lost { name: String, token: i64 },
    #[error(transparent)]
    Db(#[from] StoreError),
}

/// One replica's side of a named lease.
#[derive(Clone, Debug)]
pub struct Leadership {
    pub name: String,
    pub holder: String,
    pub ttl: Duration,
}

impl Leadership {
    pub fn new(name: &str, holder: &str, ttl: Duration) -> Leadership {
        Leadership {
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl,
        }
    }

    /// Takes the lease if it is free or expired (a new token), or extends it if this
    /// replica holds it (the same token); `None` while another holds it.
    pub async fn acquire(&self, client: &Client) -> Result<Option<Lease>, StoreError> {
        let row = client
            .query_opt(
                "INSERT INTO leases AS l (name, holder, token, expires_at)
                 VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3))
                 ON CONFLICT (name) DO UPDATE SET
                    holder = EXCLUDED.holder,
                    token = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at >= clock_timestamp()
                                 THEN l.token ELSE l.token + 1 END,
                    expires_at = EXCLUDED.expires_at
                 WHERE l.holder = EXCLUDED.holder OR l.expires_at < clock_timestamp()
                 RETURNING token, (extract(epoch FROM expires_at) * 1000)::BIGINT",
                &[&self.name, &self.holder, &self.ttl.as_secs_f64()],
            )
            .await?;
        Ok(row.map(|row| Lease {
            token: row.get(0),
            expires_ms: row.get(1),
        }))
    }

    /// Gives the lease up (a clean stop), so that a standby need not wait for it to expire.
    pub async fn release(&self, client: &Client, token: i64) -> Result<bool, StoreError> {
        Ok(client
            .execute(
                "UPDATE leases SET expires_at = clock_timestamp() - interval '1 second'
                 WHERE name = $1 AND holder = $2 AND token = $3",
                &[&self.name, &self.holder, &token],
            )
            .await?
            == 1)
    }
}

/// Renews, in one statement, those of `names` that `holder` holds and that are still in
/// force (the same tokens); returns them with their tokens. A lease that lapsed is not
/// renewed: taking it again ([`Leadership::acquire`]) gives it a new token.
pub async fn renew_held(
    client: &Client,
    names: &[String],
    holder: &str,
    ttl: Duration,
) -> Result<Vec<(String, i64)>, StoreError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $3)
             WHERE name = ANY($1) AND holder = $2 AND expires_at >= clock_timestamp()
             RETURNING name, token",
            &[&names, &holder, &ttl.as_secs_f64()],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The holder of each of `names` whose lease is in force; the others are free.
pub async fn live_holders(
    client: &Client,
    names: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = client
        .query(
            "SELECT name, holder FROM leases
             WHERE name = ANY($1) AND expires_at >= clock_timestamp()",
            &[&names],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Says that `replica` is alive (for `ttl`) and returns the replicas that are, itself
/// included. Rows of replicas gone for a hundred leases are deleted on the way.
pub async fn announce(
    client: &Client,
    replica: &str,
    ttl: Duration,
) -> Result<Vec<String>, StoreError> {
    let secs = ttl.as_secs_f64();
    client
        .execute(
            "INSERT INTO replicas (id, seen_at) VALUES ($1, clock_timestamp())
             ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at",
            &[&replica],
        )
        .await?;
    client
        .execute(
            "DELETE FROM replicas WHERE seen_at < clock_timestamp() - make_interval(secs => $1)",
            &[&(secs * 100.0)],
        )
        .await?;
    let alive = client
        .query(
            "SELECT id FROM replicas
             WHERE seen_at >= clock_timestamp() - make_interval(secs => $1)",
            &[&secs],
        )
        .await?;
    Ok(alive.iter().map(|row| row.get(0)).collect())
}

/// `replica` stops: the others count it out at once.
pub async fn leave(client: &Client, replica: &str) -> Result<(), StoreError> {
    client
        .execute("DELETE FROM replicas WHERE id = $1", &[&replica])
        .await?;
    Ok(())
}

/// Who holds lease `name`, if anyone ever did.
pub async fn holder(client: &impl GenericClient, name: &str) -> Result<Option<Holder>, StoreError> {
    let row = client
        .query_opt(
            "SELECT holder, token, (extract(epoch FROM expires_at) * 1000)::BIGINT,
                    expires_at >= clock_timestamp()
             FROM leases WHERE name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map(|row| Holder {
        holder: row.get(0),
        token: row.get(1),
        expires_ms: row.get(2),
        live: row.get(3),
    }))
}

/// Inside the transaction of a leader's commit: succeeds only while `token` still holds
/// lease `name`, and keeps the lease row share-locked until the transaction ends, so no
/// takeover can commit between this check and the commit. A fenced [`super::PgDb`] calls
/// it at each `BEGIN`.
pub async fn fence(tx: &impl GenericClient, name: &str, token: i64) -> Result<(), FenceError> {
    let held = tx
        .query_opt(
            "SELECT 1 FROM leases
             WHERE name = $1 AND token = $2 AND expires_at >= clock_timestamp()
             FOR SHARE",
            &[&name, &token],
        )
        .await
        .map_err(StoreError::from)?;
    match held {
        Some(_) => Ok(()),
        None => Err(FenceError::Lost {
            name: name.to_owned(),
            token,
        }),
    }
}
