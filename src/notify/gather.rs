//! Forming digests before delivery: a channel's alerts gathered once its `group_wait`
//! closed, and the alerts a channel held outside its `active_during` windows gathered into
//! one digest when one of them opens. Formed in one transaction, before the first attempt
//! (`store::digests`), so that restarts and retries send the same digest, and never twice.

use std::collections::HashMap;

use super::alerts::new_digest_id;
use crate::config::{Grouping, Hours};
use crate::store::{Db, StoreError, digests};

/// What is to be done now with a channel's waiting alerts.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Nothing yet: its group_wait has not closed, or its windows are closed.
    Wait,
    /// Its group_wait closed: digests of the alerts queued within it.
    Form(Grouping),
    /// One of its windows opened on alerts held while they were closed: one digest.
    Release,
    /// It no longer gathers (a reload changed it): they go out alone.
    Ungroup,
}

fn step(grouping: Option<&Grouping>, hours: Option<&Hours>, oldest: i64, now: i64) -> Step {
    if let Some(hours) = hours {
        if hours.held(now) {
            return Step::Wait;
        }
        if hours.held(oldest) {
            return Step::Release;
        }
    }
    match grouping {
        Some(grouping) if crate::domain::time::after_ms(oldest, grouping.wait) <= now => {
            Step::Form(*grouping)
        }
        Some(_) => Step::Wait,
        None => Step::Ungroup,
    }
}

/// Forms the digests that are due by `now`, in one transaction.
pub fn gather(
    conn: &mut dyn Db,
    groupings: &HashMap<String, Grouping>,
    hours: &HashMap<String, Hours>,
    now: i64,
    max_age_ms: i64,
) -> Result<(), StoreError> {
    let steps: Vec<(String, Step)> = digests::waiting(conn)?
        .into_iter()
        .map(|(channel, oldest)| {
            let step = step(groupings.get(&channel), hours.get(&channel), oldest, now);
            (channel, step)
        })
        .filter(|(_, step)| *step != Step::Wait)
        .collect();
    if steps.is_empty() {
        return Ok(());
    }
    conn.transaction(|tx| {
        for (channel, step) in &steps {
            match step {
                Step::Form(grouping) => {
                    let wait_ms = i64::try_from(grouping.wait.as_millis()).unwrap_or(i64::MAX);
                    digests::form(
                        tx,
                        channel,
                        wait_ms,
                        grouping.max,
                        now,
                        max_age_ms,
                        new_digest_id,
                    )?;
                }
                Step::Release => {
                    digests::release(tx, channel, now, max_age_ms, new_digest_id)?;
                }
                Step::Ungroup => {
                    digests::ungroup(tx, channel)?;
                }
                Step::Wait => {}
            }
        }
        Ok(())
    })
}

/// When the next of the `waiting` channels' digests falls due: a group_wait closing, or a
/// window opening on held alerts.
pub fn next_closing(
    waiting: &[(String, i64)],
    groupings: &HashMap<String, Grouping>,
    hours: &HashMap<String, Hours>,
    now: i64,
) -> Option<i64> {
    waiting
        .iter()
        .filter_map(|(channel, oldest)| match hours.get(channel) {
            Some(hours) if hours.held(now) => hours.next_open(now),
            Some(hours) if hours.held(*oldest) => Some(now),
            _ => {
                let grouping = groupings.get(channel)?;
                Some(crate::domain::time::after_ms(*oldest, grouping.wait))
            }
        })
        .min()
}
