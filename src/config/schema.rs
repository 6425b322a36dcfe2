//! `sdm-watch config schema`: a JSON Schema of the config file, generated from the types
//! the file is read into (every `Raw*` of this module), so it cannot drift from what
//! sdm-watch accepts: unknown keys are refused, as the config loader refuses them. Values
//! it cannot express (a URL's scheme, a duration's minimum) stay the loader's to check.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::RawConfig;
use super::Secret;
use super::value::HumanDuration;
use crate::domain::{Event, Status};

/// The schema of the whole file.
pub fn config_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RawConfig);
    schema.insert(
        "title".into(),
        "sdm-watch configuration (config.toml)".into(),
    );
    schema.insert(
        "description".into(),
        concat!(
            "The configuration file of sdm-watch ",
            env!("CARGO_PKG_VERSION"),
            ", as TOML read into JSON. `sdm-watch check` checks what a schema cannot."
        )
        .into(),
    );
    schema.to_value()
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^\\s*[0-9]",
            "description": "A duration such as \"30s\", \"5m\", \"1h 30m\" or \"7d\"."
        })
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A secret; prefer the matching `*_file` key."
        })
    }
}

impl JsonSchema for Status {
    fn schema_name() -> Cow<'static, str> {
        "Status".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": ["running", "done", "error", "pending"]
        })
    }
}

impl JsonSchema for Event {
    fn schema_name() -> Cow<'static, str> {
        "Event".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": [
                "done", "error", "pending", "running", "pending_reminder", "running_long",
                "watcher"
            ]
        })
    }
}
