//! The watcher's bookkeeping, one typed record over the `meta` table per organisation:
//! where its listing windows stand, and whether the very first cycle has completed. The
//! keys of the organisation named `default` are those used before organisations existed
//! (`first_cycle_done`); another's carry its name (`first_cycle_done@acme`).

use super::StoreError;
use super::db::Db;

const FIRST_CYCLE_DONE: &str = "first_cycle_done";
const FLOOR_US: &str = "window_floor_us";
const ANCHOR_US: &str = "window_anchor_us";
const PROJECTS_CHECKED: &str = "projects_checked";
const FORGOTTEN_BELOW_US: &str = "forgotten_below_us";
/// The watcher's outage in progress, as JSON (see [`Outage`]).
const OUTAGE: &str = "watcher_outage";
/// Version 2's window edge (the newest creation date listed), read once on upgrade.
const NEWEST_CREATED_US: &str = "newest_created_us";

/// What the watcher remembers between cycles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bookkeeping {
    /// A cycle has completed: from then on, changes alert.
    pub first_cycle_done: bool,
    /// `poll.lookback` before the very first cycle (µs): jobs created since are watched
    /// whatever their status.
    pub floor_us: Option<i64>,
    /// When the last complete cycle began (µs, the earlier of the local and the server's
    /// clock): the next listing of new jobs starts a margin before it.
    pub anchor_us: Option<i64>,
    /// The projects whose jobs were last checked for, as `17,18`: a job found in none of
    /// them is checked again when the list changes.
    pub projects_checked: Option<String>,
    /// `[state] keep` forgot settled jobs created before this (µs): one first seen settled
    /// below it may be one forgotten, and is recorded silently. Only ever rises.
    pub forgotten_below_us: Option<i64>,
}

impl Bookkeeping {
    pub fn read(conn: &mut dyn Db, org: &str) -> Result<Bookkeeping, StoreError> {
        let mut number = |key| -> Result<Option<i64>, StoreError> {
            Ok(get(conn, &keyed(key, org))?.and_then(|value| value.parse().ok()))
        };
        let floor_us = number(FLOOR_US)?;
        let anchor_us = number(ANCHOR_US)?.or(number(NEWEST_CREATED_US)?);
        let forgotten_below_us = number(FORGOTTEN_BELOW_US)?;
        Ok(Bookkeeping {
            first_cycle_done: get(conn, &keyed(FIRST_CYCLE_DONE, org))?.is_some(),
            floor_us,
            anchor_us,
            projects_checked: get(conn, &keyed(PROJECTS_CHECKED, org))?,
            forgotten_below_us,
        })
    }

    /// Below this creation date (µs) a job first seen settled is recorded silently: before
    /// the very first cycle's lookback, or where `[state] keep` may have forgotten it.
    pub fn silent_below_us(&self) -> i64 {
        self.floor_us
            .unwrap_or(i64::MIN)
            .max(self.forgotten_below_us.unwrap_or(i64::MIN))
    }

    /// Records that settled jobs created before `before_us` were forgotten (the horizon
    /// never moves back, even when `keep` grows).
    pub fn forgot_below(conn: &mut dyn Db, org: &str, before_us: i64) -> Result<(), StoreError> {
        let key = keyed(FORGOTTEN_BELOW_US, org);
        let stored = get(conn, &key)?.and_then(|value| value.parse::<i64>().ok());
        if stored.is_none_or(|stored| stored < before_us) {
            set(conn, &key, &before_us.to_string())?;
        }
        Ok(())
    }

    /// Writes every field that is set (a field is never unset).
    pub fn write(&self, conn: &mut dyn Db, org: &str) -> Result<(), StoreError> {
        if self.first_cycle_done {
            set(conn, &keyed(FIRST_CYCLE_DONE, org), "1")?;
        }
        if let Some(floor) = self.floor_us {
            set(conn, &keyed(FLOOR_US, org), &floor.to_string())?;
        }
        if let Some(anchor) = self.anchor_us {
            set(conn, &keyed(ANCHOR_US, org), &anchor.to_string())?;
        }
        if let Some(projects) = &self.projects_checked {
            set(conn, &keyed(PROJECTS_CHECKED, org), projects)?;
        }
        if let Some(below) = self.forgotten_below_us {
            Self::forgot_below(conn, org, below)?;
        }
        Ok(())
    }
}

/// An outage of the watcher: no cycle has succeeded since `since_ms`. Kept in the store so
/// that a restart during an outage neither repeats its `watcher.failing` nor forgets it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outage {
    /// When the first failed cycle of the outage ended (ms).
    pub since_ms: i64,
    /// The last failure's reason (`token_refused`, ...) and error.
    pub reason: String,
    pub last_error: String,
    /// `watcher.failing` was queued: `watcher.recovered` follows when a cycle succeeds.
    pub alerted: bool,
}

impl Outage {
    pub fn read(conn: &mut dyn Db, org: &str) -> Result<Option<Outage>, StoreError> {
        // An unreadable record (written by a later version, or damaged) is an outage whose
        // start is unknown: dropped, so that the next failure starts a new one.
        Ok(get(conn, &keyed(OUTAGE, org))?.and_then(|text| serde_json::from_str(&text).ok()))
    }

    pub fn write(&self, conn: &mut dyn Db, org: &str) -> Result<(), StoreError> {
        let text = serde_json::to_string(self).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        set(conn, &keyed(OUTAGE, org), &text)
    }

    pub fn clear(conn: &mut dyn Db, org: &str) -> Result<(), StoreError> {
        conn.execute("DELETE FROM meta WHERE key = ?1", &[&keyed(OUTAGE, org)])?;
        Ok(())
    }
}

/// `key` of organisation `org`: as it always was for `default`, with the name for another.
fn keyed(key: &str, org: &str) -> String {
    if org == crate::domain::DEFAULT_ORGANISATION {
        key.to_owned()
    } else {
        format!("{key}@{org}")
    }
}

fn get(conn: &mut dyn Db, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT value FROM meta WHERE key = ?1", &[&key])?
        .map(|row| row.get(0))
        .transpose()
}

fn set(conn: &mut dyn Db, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_version_2_window_edge_as_the_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("state.db")).unwrap();
        let mut guard = store.conn.lock().unwrap();
        let conn = guard.as_mut();
        assert_eq!(
            Bookkeeping::read(conn, "default").unwrap(),
            Bookkeeping::default()
        );
        set(conn, NEWEST_CREATED_US, "42").unwrap();
        assert_eq!(
            Bookkeeping::read(conn, "default").unwrap().anchor_us,
            Some(42)
        );
        let written = Bookkeeping {
            first_cycle_done: true,
            floor_us: Some(1),
            anchor_us: Some(2),
            projects_checked: Some("17,18".into()),
            forgotten_below_us: Some(3),
        };
        written.write(conn, "default").unwrap();
        assert_eq!(Bookkeeping::read(conn, "default").unwrap(), written);
        assert_eq!(
            Bookkeeping::read(conn, "acme").unwrap().anchor_us,
            None,
            "another organisation's bookkeeping is its own"
        );
        written.write(conn, "acme").unwrap();
        assert_eq!(Bookkeeping::read(conn, "acme").unwrap(), written);
    }
}
