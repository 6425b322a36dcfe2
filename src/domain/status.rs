//! A job's status: the four the API documents, and anything else kept as sent.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A job's status. The API documents four; anything else is kept as sent rather than
/// failing a whole page, and is treated as settled (like `done` and `error`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Running,
    Done,
    Error,
    Pending,
    Other(String),
}

impl Status {
    pub const KNOWN: [Status; 4] = [
        Status::Running,
        Status::Done,
        Status::Error,
        Status::Pending,
    ];

    pub fn parse(text: &str) -> Status {
        match text {
            "running" => Status::Running,
            "done" => Status::Done,
            "error" => Status::Error,
            "pending" => Status::Pending,
            other => Status::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Running => "running",
            Status::Done => "done",
            Status::Error => "error",
            Status::Pending => "pending",
            Status::Other(text) => text,
        }
    }

    /// Running and pending jobs can still change; every other status is settled.
    pub fn is_active(&self) -> bool {
        matches!(self, Status::Running | Status::Pending)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Status::parse(&text))
    }
}
