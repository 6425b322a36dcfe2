//! What operators do to the alerts, from the console or the command line: add or end a
//! silence, queue dead alerts again, send a test alert. Each change is written with its audit entry (who,
//! when, from where, what, how it ended) in one transaction, so the trail never misses an
//! action nor tells one that did not happen.

use crate::domain::time::{from_millis, rfc3339_seconds};
use crate::notify::alerts::new_alert_id;
use crate::notify::{AlertEvent, Attempt, DeliverySetup, Message};
use crate::store::audit::{self, Entry};
use crate::store::silences::{self, Silence};
use crate::store::{Store, StoreError, gauges, inspect, outbox};

/// Who acts, and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub who: String,
    /// The client's address, or `cli`.
    pub address: String,
}

impl Actor {
    /// The command line's user: `$SUDO_USER`, `$USER` or `$LOGNAME`, else the uid.
    pub fn cli() -> Actor {
        let who = ["SUDO_USER", "USER", "LOGNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            // SAFETY: getuid cannot fail and touches no memory.
            .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }));
        Actor {
            who,
            address: "cli".into(),
        }
    }

    fn entry(&self, at_ms: i64, action: &str, detail: String, outcome: &str) -> Entry {
        Entry {
            at_ms,
            who: self.who.clone(),
            address: self.address.clone(),
            action: action.to_owned(),
            detail,
            outcome: outcome.to_owned(),
        }
    }
}

/// A silence in words: `project 17 until 2026-12-02T12:00:00Z: re-import`.
pub fn describe(silence: &Silence) -> String {
    let until = from_millis(silence.ends_ms)
        .map(rfc3339_seconds)
        .unwrap_or_default();
    format!("{} until {until}: {}", silence.describe(), silence.reason)
}

/// Adds `silence` (it applies from the daemon's next cycle), audited.
pub async fn add_silence(store: &Store, silence: Silence, actor: &Actor) -> Result<(), StoreError> {
    let entry = actor.entry(
        silence.created_ms,
        "silence.add",
        format!("{}: {}", silence.id, describe(&silence)),
        "ok",
    );
    store
        .run(move |conn| {
            conn.transaction(|tx| {
                silences::insert(tx, &silence)?;
                audit::record(tx, &entry)
            })
        })
        .await
}

/// Ends the silence `id` now; false if none in force has that id. Audited either way.
pub async fn end_silence(
    store: &Store,
    id: &str,
    now_ms: i64,
    actor: &Actor,
) -> Result<bool, StoreError> {
    let (id, actor) = (id.to_owned(), actor.clone());
    store
        .run(move |conn| {
            conn.transaction(|tx| {
                let ended = silences::end(tx, &id, now_ms)?;
                let outcome = if ended {
                    "ok"
                } else {
                    "no silence in force has this id"
                };
                audit::record(tx, &actor.entry(now_ms, "silence.end", id.clone(), outcome))?;
                Ok(ended)
            })
        })
        .await
}

/// Queues the dead alerts `ids` again (same id, attempts from zero, `max_age` from now);
/// each id with whether it was dead and is queued now. One audit entry for them all.
pub async fn retry(
    store: &Store,
    ids: Vec<String>,
    now_ms: i64,
    what: &str,
    actor: &Actor,
) -> Result<Vec<(String, bool)>, StoreError> {
    let (what, actor) = (what.to_owned(), actor.clone());
    store
        .run(move |conn| {
            conn.transaction(|tx| {
                let mut results = Vec::with_capacity(ids.len());
                for id in ids {
                    let requeued = inspect::requeue(tx, &id, now_ms)?;
                    results.push((id, requeued));
                }
                gauges::set_outbox_pending(tx)?;
                outbox::announce(tx)?;
                let queued = results.iter().filter(|(_, r)| *r).count();
                let outcome = format!("{queued} of {} queued again", results.len());
                audit::record(tx, &actor.entry(now_ms, "alerts.retry", what, &outcome))?;
                Ok(results)
            })
        })
        .await
}

/// The channels as configured now (a reload replaces them): what a test alert goes through.
pub type SetupNow = std::sync::Arc<dyn Fn() -> std::sync::Arc<DeliverySetup> + Send + Sync>;

/// Sends a test alert to `channel` now (not through the outbox: the answer is the
/// channel's), audited; the outcome in words, `ok` when delivered. `None`: no such channel.
pub async fn test_alert(
    store: &Store,
    setup: &DeliverySetup,
    channel: &str,
    now_ms: i64,
    actor: &Actor,
) -> Result<Option<String>, StoreError> {
    let Some(sender) = setup.channels.get(channel) else {
        return Ok(None);
    };
    let at = from_millis(now_ms).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let id = new_alert_id();
    let message = Message::Alert {
        id: id.clone(),
        payload: AlertEvent::test(at).to_json(),
    };
    let outcome = match sender.send(&message).await {
        Attempt::Delivered => "ok".to_owned(),
        Attempt::Retry { error, .. } | Attempt::Permanent { error } => format!("failed: {error}"),
    };
    let entry = actor.entry(
        now_ms,
        "test-alert",
        format!("{channel} (alert {id})"),
        &outcome,
    );
    store.run(move |conn| audit::record(conn, &entry)).await?;
    Ok(Some(outcome))
}
