//! Scheduled reports' slots: each decided once, sent or skipped, by the replica whose
//! insert comes first; a slot decided is never decided again (restarts included).

use super::StoreError;
use super::db::Db;

/// What became of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Queued to its channels.
    Sent,
    /// Found too late (6 h or more after its time), not sent.
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Decides `slot` of report `name` as `outcome`, in the caller's transaction: true if this
/// call decided it, false if it was decided before (by this process or another).
pub fn decide(
    conn: &mut dyn Db,
    name: &str,
    slot: &str,
    at_ms: i64,
    now_ms: i64,
    outcome: Outcome,
) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO report_slots (name, slot, at_ms, decided_ms, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name, slot) DO NOTHING",
        &[&name, &slot, &at_ms, &now_ms, &outcome.as_str()],
    )?;
    Ok(inserted == 1)
}

/// Whether `slot` of report `name` was decided.
pub fn decided(conn: &mut dyn Db, name: &str, slot: &str) -> Result<bool, StoreError> {
    conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM report_slots WHERE name = ?1 AND slot = ?2)",
        &[&name, &slot],
    )?
    .get(0)
}
