//! Digests: a channel's alerts gathered into one message. A digest is formed with its
//! members in one transaction, before its first attempt, so that every retry and every
//! restart sends the same digest (same id, same members, same body); each alert is in one
//! digest at most.

use super::StoreError;
use super::db::{Db, DbRow};
use super::outbox::{self, Alert, Claim, Recorded, Target};

/// A digest as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    pub id: String,
    pub channel: String,
    pub created_ms: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    /// `delivery.max_age` after its oldest member was queued.
    pub expires_ms: i64,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, channel, created_ms, attempts, next_attempt_ms, expires_ms, last_error";

fn from_row(row: &DbRow) -> Result<Digest, StoreError> {
    Ok(Digest {
        id: row.get(0)?,
        channel: row.get(1)?,
        created_ms: row.get(2)?,
        attempts: row.get(3)?,
        next_attempt_ms: row.get(4)?,
        expires_ms: row.get(5)?,
        last_error: row.get(6)?,
    })
}

/// The channels with alerts waiting to be gathered, and when the oldest of each was queued.
pub fn waiting(conn: &mut dyn Db) -> Result<Vec<(String, i64)>, StoreError> {
    conn.query_map(
        "SELECT channel, MIN(created_ms) FROM alerts
         WHERE state = 'pending' AND grouped = 1 AND digest_id IS NULL GROUP BY channel",
        &[],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}

/// Gathers `channel`'s waiting alerts queued within `wait_ms` of the oldest into digests of
/// at most `max`, if the oldest has waited that long by `now_ms`; `new_id` names each. An
/// alert alone in its window is sent as itself. Returns the new digests' ids.
pub fn form(
    conn: &mut dyn Db,
    channel: &str,
    wait_ms: i64,
    max: usize,
    now_ms: i64,
    max_age_ms: i64,
    new_id: impl FnMut() -> String,
) -> Result<Vec<String>, StoreError> {
    gather_waiting(
        conn, channel, wait_ms, max, now_ms, max_age_ms, false, new_id,
    )
}

/// Gathers every alert `channel` holds (queued while none of its active time windows was
/// open) into one digest, now that one is: delivery's `max_age` counts from now, since
/// they were held on purpose. An alert held alone goes out as itself.
pub fn release(
    conn: &mut dyn Db,
    channel: &str,
    now_ms: i64,
    max_age_ms: i64,
    new_id: impl FnMut() -> String,
) -> Result<Vec<String>, StoreError> {
    gather_waiting(
        conn,
        channel,
        i64::MAX,
        usize::MAX,
        now_ms,
        max_age_ms,
        true,
        new_id,
    )
}

#[allow(clippy::too_many_arguments)]
fn gather_waiting(
    conn: &mut dyn Db,
    channel: &str,
    wait_ms: i64,
    max: usize,
    now_ms: i64,
    max_age_ms: i64,
    released: bool,
    mut new_id: impl FnMut() -> String,
) -> Result<Vec<String>, StoreError> {
    // Replicas form a channel's digests one at a time (the lock lasts the transaction).
    conn.lock(digest_lock(channel))?;
    let waiting: Vec<(String, i64, i64)> = conn.query_map(
        "SELECT id, created_ms, COALESCE(requeued_ms, created_ms) FROM alerts
             WHERE state = 'pending' AND grouped = 1 AND digest_id IS NULL AND channel = ?1
             ORDER BY created_ms, id",
        &[&channel],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let Some(&(_, first, _)) = waiting.first() else {
        return Ok(Vec::new());
    };
    // Released: everything held so far.
    let closes = if released {
        now_ms
    } else {
        first.saturating_add(wait_ms)
    };
    if closes > now_ms {
        return Ok(Vec::new());
    }
    let window: Vec<&(String, i64, i64)> = waiting
        .iter()
        .take_while(|(_, created, _)| *created <= closes)
        .collect();
    if let [(alone, _, _)] = window.as_slice() {
        // Nothing came with it: it goes out as itself, as without group_wait (a held one
        // ages from its release).
        if released {
            conn.execute(
                "UPDATE alerts SET grouped = 0, requeued_ms = ?2 WHERE id = ?1",
                &[alone, &now_ms],
            )?;
        } else {
            conn.execute("UPDATE alerts SET grouped = 0 WHERE id = ?1", &[alone])?;
        }
        return Ok(Vec::new());
    }
    let mut formed = Vec::new();
    for members in window.chunks(max.max(1)) {
        let id = new_id();
        let oldest = if released {
            now_ms
        } else {
            members
                .iter()
                .map(|(_, _, age_from)| *age_from)
                .min()
                .unwrap_or(now_ms)
        };
        conn.execute(
            "INSERT INTO digests (id, channel, created_ms, state, next_attempt_ms, expires_ms)
             VALUES (?1, ?2, ?3, 'pending', ?3, ?4)",
            &[&id, &channel, &now_ms, &oldest.saturating_add(max_age_ms)],
        )?;
        for (alert, _, _) in members {
            conn.execute(
                "UPDATE alerts SET digest_id = ?1 WHERE id = ?2",
                &[&id, alert],
            )?;
        }
        formed.push(id);
    }
    Ok(formed)
}

/// Waiting alerts whose channel no longer gathers them (a reload changed it): they go out
/// alone.
pub fn ungroup(conn: &mut dyn Db, channel: &str) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE alerts SET grouped = 0
         WHERE state = 'pending' AND grouped = 1 AND digest_id IS NULL AND channel = ?1",
        &[&channel],
    )
}

/// Pending digests due at `now_ms`, oldest first, at most `limit`.
pub fn due(conn: &mut dyn Db, claim: &Claim, limit: usize) -> Result<Vec<Digest>, StoreError> {
    let mut digests = outbox::claim_rows(
        conn,
        "digests",
        COLUMNS,
        "next_attempt_ms <= ?2",
        claim,
        limit,
    )?
    .iter()
    .map(from_row)
    .collect::<Result<Vec<_>, _>>()?;
    digests.sort_by_key(|digest| (digest.next_attempt_ms, digest.created_ms));
    Ok(digests)
}

/// The advisory lock under which a channel's digests are formed.
fn digest_lock(channel: &str) -> i64 {
    // FNV-1a: stable across replicas and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "sdm-watch digests ".bytes().chain(channel.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// When the next pending digest falls due after `now_ms`.
pub fn next_due_after(conn: &mut dyn Db, now_ms: i64) -> Result<Option<i64>, StoreError> {
    conn.query_one(
        "SELECT MIN(CASE WHEN claim_until_ms > next_attempt_ms THEN claim_until_ms
                         ELSE next_attempt_ms END) FROM digests
         WHERE state = 'pending' AND (next_attempt_ms > ?1 OR claim_until_ms > ?1)",
        &[&now_ms],
    )?
    .get(0)
}

pub fn get(conn: &mut dyn Db, id: &str) -> Result<Option<Digest>, StoreError> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM digests WHERE id = ?1"),
        &[&id],
    )?
    .map(|row| from_row(&row))
    .transpose()
}

/// A digest's alerts, in the order they were queued.
pub fn members(conn: &mut dyn Db, id: &str) -> Result<Vec<Alert>, StoreError> {
    conn.query_map(
        &format!(
            "SELECT {} FROM alerts WHERE digest_id = ?1 ORDER BY created_ms, id",
            outbox::COLUMNS
        ),
        &[&id],
        outbox::from_row,
    )
}

/// Records the outcome of an attempt at digest `id` on the digest and on its alerts.
pub fn record_outcome(
    conn: &mut dyn Db,
    id: &str,
    attempts: u32,
    outcome: Recorded<'_>,
    now_ms: i64,
    by: &str,
) -> Result<(), StoreError> {
    outbox::record_outcome(conn, Target::Digest, id, attempts, outcome, now_ms, by)?;
    outbox::record_outcome(
        conn,
        Target::DigestMembers,
        id,
        attempts,
        outcome,
        now_ms,
        by,
    )
}
