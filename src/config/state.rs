//! `[state]`: where the store lives.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Section};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawState {
    pub path: PathBuf,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            path: "/var/lib/sdm-watch/state.db".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StateConfig {
    pub path: PathBuf,
}

impl StateConfig {
    pub(super) fn parse(raw: RawState) -> Result<StateConfig, ConfigError> {
        if raw.path.as_os_str().is_empty() {
            return Err(Section::new("state").invalid("path", "must not be empty"));
        }
        Ok(StateConfig { path: raw.path })
    }
}
