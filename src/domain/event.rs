//! What an alert is about: a job entering a status, a reminder about a job that stays
//! in one, or the watcher itself failing or recovering.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Status;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// The job entered this status.
    Entered(Status),
    /// The job is still `pending`, `poll.remind_pending_every` after it became so (or after
    /// the last reminder).
    PendingReminder,
    /// The job has been `running` for longer than `poll.running_longer_than`.
    RunningLong,
    /// The watcher completed no cycle for `watchdog.alert_after` (`watcher.failing`), or
    /// completed one after that (`watcher.recovered`).
    Watcher,
    /// An incident a channel was sent ended (`job.resolved`, channels with
    /// `send_resolved`).
    Resolved,
    /// A scheduled report (`[[report]]`), sent to the channels it names.
    Report,
}

/// The names of the events that are not a status. An API status spelt like one (or like
/// [`STATUS_PREFIX`]...) is stored as `status:<name>`, so that it reads back as a status.
const EVENT_NAMES: [&str; 5] = [
    "pending_reminder",
    "running_long",
    "watcher",
    "resolved",
    "report",
];
const STATUS_PREFIX: &str = "status:";

impl Event {
    /// An event as written in the config, on the command line or in the store.
    pub fn parse(text: &str) -> Event {
        if let Some(status) = text.strip_prefix(STATUS_PREFIX) {
            return Event::Entered(Status::parse(status));
        }
        match text {
            "pending_reminder" => Event::PendingReminder,
            "running_long" => Event::RunningLong,
            "watcher" => Event::Watcher,
            "resolved" => Event::Resolved,
            "report" => Event::Report,
            status => Event::Entered(Status::parse(status)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Event::Entered(status) => status.as_str(),
            Event::PendingReminder => "pending_reminder",
            Event::RunningLong => "running_long",
            Event::Watcher => "watcher",
            Event::Resolved => "resolved",
            Event::Report => "report",
        }
    }

    /// How the store keeps the event, read back the same by [`Event::parse`]: its name,
    /// except that an API status spelt like another event (a status `resolved`, say) is
    /// `status:resolved`.
    pub fn stored(&self) -> Cow<'_, str> {
        match self {
            Event::Entered(status)
                if EVENT_NAMES.contains(&status.as_str())
                    || status.as_str().starts_with(STATUS_PREFIX) =>
            {
                Cow::Owned(format!("{STATUS_PREFIX}{}", status.as_str()))
            }
            other => Cow::Borrowed(other.as_str()),
        }
    }

    /// The reminders, which no status change causes.
    pub fn is_reminder(&self) -> bool {
        matches!(self, Event::PendingReminder | Event::RunningLong)
    }
}

impl From<Status> for Event {
    fn from(status: Status) -> Self {
        Event::Entered(status)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.stored())
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Event::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_written() {
        for text in [
            "done",
            "error",
            "pending",
            "running",
            "pending_reminder",
            "running_long",
            "watcher",
        ] {
            assert_eq!(Event::parse(text).as_str(), text);
        }
        assert_eq!(Event::parse("done"), Event::Entered(Status::Done));
        // An API status spelt like an event, or like the marker, is still a status after a
        // round trip through the store or JSON.
        for name in EVENT_NAMES.into_iter().chain(["status:done", "done"]) {
            let event = Event::Entered(Status::parse(name));
            assert_eq!(Event::parse(&event.stored()), event, "{name}");
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(
                serde_json::from_str::<Event>(&json).unwrap(),
                event,
                "{json}"
            );
        }
        assert_eq!(Event::Resolved.stored(), "resolved");
        assert_eq!(Event::parse("resolved"), Event::Resolved);
        assert!(Event::RunningLong.is_reminder() && !Event::from(Status::Error).is_reminder());
    }
}
