//! `[[time_window]]` and the channels' `active_during` / `muted_during`: when a channel
//! hears its alerts. Outside every window it is active during, its alerts wait in the
//! store and go out as one digest when one opens; inside a window it is muted during,
//! they are recorded silenced.

use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use super::error::{ConfigError, Section};
use crate::domain::calendar::{Window, WindowError};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTimeWindow {
    pub name: String,
    /// `["mon-fri"]`, `["sat", "sun"]`.
    pub weekdays: Vec<String>,
    /// `["08:00-18:00"]`; `"22:00-06:00"` runs overnight.
    pub times: Vec<String>,
    /// An IANA time zone; default `UTC`.
    #[serde(default = "utc")]
    pub timezone: String,
}

fn utc() -> String {
    "UTC".into()
}

/// A `[[time_window]]`, as written (for `check`) and as read.
#[derive(Clone, Debug, Serialize)]
pub struct TimeWindow {
    pub name: String,
    pub weekdays: Vec<String>,
    pub times: Vec<String>,
    pub timezone: String,
    #[serde(skip)]
    pub window: Arc<Window>,
}

pub(super) fn parse(raw: Vec<RawTimeWindow>) -> Result<Vec<TimeWindow>, ConfigError> {
    let mut windows: Vec<TimeWindow> = Vec::new();
    for (i, raw) in raw.into_iter().enumerate() {
        let section = Section::new(format!("time_window[{i}]"));
        let name = raw.name.trim();
        if name.is_empty() {
            return Err(section.invalid("name", "must not be empty"));
        }
        if windows.iter().any(|w| w.name == name) {
            return Err(section.invalid("name", format!("{name:?} names two time windows")));
        }
        let window =
            Window::parse(&raw.weekdays, &raw.times, &raw.timezone).map_err(|e| match e {
                WindowError::Weekdays(problem) => section.invalid("weekdays", problem.to_string()),
                WindowError::Times(problem) => section.invalid("times", problem.to_string()),
                WindowError::Timezone(problem) => section.invalid("timezone", problem.to_string()),
            })?;
        windows.push(TimeWindow {
            name: name.to_owned(),
            weekdays: raw.weekdays,
            times: raw.times,
            timezone: raw.timezone,
            window: Arc::new(window),
        });
    }
    Ok(windows)
}

/// When a channel hears its alerts: the windows it is active during (none: always) and
/// those it is muted during.
#[derive(Clone, Debug, Default)]
pub struct Hours {
    pub active: Vec<(String, Arc<Window>)>,
    pub muted: Vec<(String, Arc<Window>)>,
}

impl Hours {
    /// The channel's hours from the window names it gives, each checked to exist.
    pub(super) fn parse(
        section: &Section,
        active_during: Vec<String>,
        muted_during: Vec<String>,
        windows: &[TimeWindow],
    ) -> Result<Hours, ConfigError> {
        let named = |key: &str, names: Vec<String>| {
            names
                .into_iter()
                .map(|name| match windows.iter().find(|w| w.name == name) {
                    Some(window) => Ok((name, window.window.clone())),
                    None => Err(section.invalid(
                        key,
                        format!(
                            "{name:?} is not a [[time_window]] of this config ({})",
                            if windows.is_empty() {
                                "it has none".to_owned()
                            } else {
                                let names: Vec<&str> =
                                    windows.iter().map(|w| w.name.as_str()).collect();
                                names.join(", ")
                            }
                        ),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Hours {
            active: named("active_during", active_during)?,
            muted: named("muted_during", muted_during)?,
        })
    }

    /// Whether an alert queued at `ms` waits for a window to open.
    pub fn held(&self, ms: i64) -> bool {
        !self.active.is_empty() && !self.active.iter().any(|(_, w)| w.contains(ms))
    }

    /// The window the channel is muted by at `ms`, if any.
    pub fn muted_by(&self, ms: i64) -> Option<&str> {
        self.muted
            .iter()
            .find(|(_, w)| w.contains(ms))
            .map(|(name, _)| name.as_str())
    }

    /// When alerts held at `ms` may go out: the first opening of an active window.
    pub fn next_open(&self, ms: i64) -> Option<i64> {
        self.active
            .iter()
            .filter_map(|(_, w)| w.next_open(ms))
            .min()
    }
}

/// `check` prints the window names.
impl Serialize for Hours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Names<'a> {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            active_during: Vec<&'a str>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            muted_during: Vec<&'a str>,
        }
        Names {
            active_during: self.active.iter().map(|(n, _)| n.as_str()).collect(),
            muted_during: self.muted.iter().map(|(n, _)| n.as_str()).collect(),
        }
        .serialize(s)
    }
}
