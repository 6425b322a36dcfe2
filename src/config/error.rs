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

/// Turns a deserializing error (the file's shape: an unknown key, a missing one, a value of
/// the wrong type) into one message naming the key.
pub(super) fn shape_error(
    error: serde_path_to_error::Error<toml::de::Error>,
    path: &Path,
) -> ConfigError {
    use serde_path_to_error::Segment;

    let mut segments: Vec<String> = Vec::new();
    for segment in error.path().iter() {
        match segment {
            Segment::Seq { index } => segments.push(format!("[{index}]")),
            Segment::Map { key } => segments.push(key.clone()),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    let (field, mut problem) = shape_problem(error.inner().message());
    if let Some(field) = field
        && segments.last() != Some(&field)
    {
        segments.push(field);
    }
    // A secret, or a webhook header's value (an API key, often; `check` never shows them).
    let secret = segments
        .last()
        .is_some_and(|last| super::exposure::is_secret_key(last))
        || segments.iter().any(|segment| segment == "headers");
    if secret {
        problem = without_the_value(&problem);
    }
    if segments.is_empty() {
        return ConfigError::File {
            path: path.to_owned(),
            problem,
        };
    }
    let mut key = String::new();
    for segment in &segments {
        if !key.is_empty() && !segment.starts_with('[') {
            key.push('.');
        }
        key.push_str(segment);
    }
    ConfigError::Invalid { key, problem }
}

/// serde's message in an operator's words, and the key it names when the key is not yet in
/// the path (a missing or unknown one). serde words these messages the same way for every
/// format (`serde::de::Error`'s provided methods).
fn shape_problem(message: &str) -> (Option<String>, String) {
    let quoted = |text: &str| text.split('`').nth(1).map(str::to_owned);
    let choices = |expected: &str| {
        expected
            .trim_start_matches("one of ")
            .replace('`', "")
            .replace(" or ", ", ")
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let expected = rest.split_once(", expected ").map(|(_, e)| e).unwrap_or("");
        let problem = if expected.is_empty() || expected == "there are no fields" {
            "unknown key".to_owned()
        } else {
            format!("unknown key (expected one of: {})", choices(expected))
        };
        return (quoted(rest), problem);
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return (quoted(rest), "missing".to_owned());
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return (
            None,
            format!(
                "unknown value {found} (expected one of: {})",
                choices(expected)
            ),
        );
    }
    let wrong = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "));
    if let Some((found, expected)) = wrong {
        let expected = match expected {
            "i64" => "an integer",
            "u64" | "usize" => "an integer from 0 to 18446744073709551615",
            "u32" => "an integer from 0 to 4294967295",
            "u16" => "an integer from 0 to 65535",
            "u8" => "an integer from 0 to 255",
            "f64" | "f32" => "a number",
            "a boolean" | "bool" => "true or false",
            "a sequence" => "an array",
            "a string" | "a character" => "a string",
            other if other.starts_with("struct ") || other.starts_with("a map") => "a table",
            other => other,
        };
        return (None, format!("expected {expected}, found {found}"));
    }
    (None, message.to_owned())
}

/// `expected a string, found integer `1234``: the kind found, not the value, which for a
/// secret key is the secret.
fn without_the_value(problem: &str) -> String {
    match problem.split_once(", found ") {
        Some((expected, found)) => {
            let kind = found
                .split_once(" `")
                .or_else(|| found.split_once(" \""))
                .map_or(found, |(kind, _)| kind);
            format!("{expected}, found {kind}")
        }
        None => problem.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn refusal(text: &str) -> String {
        Config::from_toml(text, std::path::Path::new("t.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_its_value() {
        let error = refusal("[api]\ntoken = 987654321\n");
        assert!(error.starts_with("api.token: expected a string"), "{error}");
        assert!(!error.contains("987654321"), "{error}");

        let error = refusal(
            "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/\"\n\
             headers = { x-api-key = 55501234 }\n",
        );
        assert!(
            error.starts_with("webhook[0].headers.x-api-key: expected a string"),
            "{error}"
        );
        assert!(!error.contains("55501234"), "{error}");
        // Other keys still show what was found: it helps, and it is no secret.
        let error = refusal("[api]\ntoken = \"t\"\npage_size = \"many\"\n");
        assert!(error.contains("found string \"many\""), "{error}");
    }
}
