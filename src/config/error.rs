//! What is wrong with a configuration, named by its key, and where the key came from.

use std::path::{Path, PathBuf};

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    pub(super) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The offending key, as an operator writes it (`webhook[0].url`).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::File { .. } => None,
        }
    }
}

/// The keys of one section, for error messages: `Section::new("api").key("timeout")` is
/// `api.timeout`; `Section::new(format!("webhook[{i}]"))` names a channel's.
pub(super) struct Section(String);

impl Section {
    pub fn new(name: impl Into<String>) -> Self {
        Section(name.into())
    }

    pub fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.0)
    }

    pub fn invalid(&self, field: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.key(field), problem)
    }
}

/// Adds "(set by environment variable X)" when the environment gave the bad key, so that
/// an operator does not search the file for it.
pub(super) fn name_the_variable(error: ConfigError) -> ConfigError {
    let ConfigError::Invalid { key, problem } = error else {
        return error;
    };
    let variable = key
        .split('.')
        .chain(["", ""])
        .take(2)
        .filter(|part| !part.is_empty())
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join("__");
    let variable = format!("SDM_WATCH_{variable}");
    let problem = if !key.contains('[') && std::env::var_os(&variable).is_some() {
        format!("{problem} (set by environment variable {variable})")
    } else {
        problem
    };
    ConfigError::Invalid { key, problem }
}

/// Turns figment's error into one message naming the key.
pub(super) fn figment_error(error: figment::Error, path: &Path) -> ConfigError {
    use figment::error::Kind;

    let error = error
        .into_iter()
        .next()
        .unwrap_or_else(|| figment::Error::from(String::new()));
    let mut segments = error.path.clone();
    let problem = match &error.kind {
        Kind::UnknownField(field, expected) => {
            if segments.last() != Some(field) {
                segments.push(field.clone());
            }
            format!("unknown key (expected one of: {})", expected.join(", "))
        }
        Kind::MissingField(field) => {
            segments.push(field.to_string());
            "missing".to_owned()
        }
        Kind::InvalidType(actual, expected) => {
            let expected = match expected.as_str() {
                "i64" | "u32" | "u16" => "an integer",
                "f64" => "a number",
                "bool" => "true or false",
                other => other,
            };
            format!("expected {expected}, found {actual}")
        }
        other => other.to_string(),
    };
    if segments.is_empty() {
        return ConfigError::File {
            path: path.to_owned(),
            problem,
        };
    }
    let mut key = String::new();
    for segment in &segments {
        if segment.parse::<usize>().is_ok() {
            key.push_str(&format!("[{segment}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    ConfigError::Invalid { key, problem }
}
