//! What an alert is about: a job entering a status, a reminder about a job that stays
//! in one, or the watcher itself failing or recovering.

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

impl Event {
    pub fn parse(text: &str) -> Event {
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
        serializer.serialize_str(self.as_str())
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
        assert!(Event::RunningLong.is_reminder() && !Event::from(Status::Error).is_reminder());
    }
}
