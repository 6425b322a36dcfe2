//! The environment over the file: `SDM_WATCH_<SECTION>__<KEY>=value` sets `<section>.<key>`
//! (`SDM_WATCH_API__PAGE_SIZE=40` is `page_size = 40` in `[api]`). A value is read as TOML
//! when it is a number, a boolean, a quoted string, an array or an inline table, and as the
//! text it is otherwise (`30s`, `0.0.0.0:8080`); a secret (`api.token`, `smtp.password`, ...)
//! is always its text, digits or not.

use std::ffi::OsString;

use toml::{Table, Value};

use super::ConfigError;

const PREFIX: &str = "SDM_WATCH_";

/// Sets each `SDM_WATCH_<SECTION>__<KEY>` of `variables` in `table` (the prefix in any
/// case, as the key). Variables without a `__` (`SDM_WATCH_CONFIG`, `SDM_WATCH_LOG`) are
/// not config keys and are left alone.
pub(super) fn overlay(
    table: &mut Table,
    variables: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<(), ConfigError> {
    let mut keys: Vec<(String, OsString)> = variables
        .into_iter()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value)))
        .filter(|(name, _)| {
            name.get(..PREFIX.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
                && name[PREFIX.len()..].contains("__")
        })
        .collect();
    // One order whatever the environment's, so that the same environment fails the same way.
    keys.sort();
    for (name, value) in keys {
        let key: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        let wrong = |problem: &str| {
            ConfigError::invalid(
                key.join("."),
                format!("{problem} (set by environment variable {name})"),
            )
        };
        if key.iter().any(String::is_empty) {
            return Err(wrong("names no key: write SDM_WATCH_<SECTION>__<KEY>"));
        }
        let Some(text) = value.to_str() else {
            return Err(wrong("is not UTF-8"));
        };
        let secret = key
            .last()
            .is_some_and(|last| super::exposure::is_secret_key(last));
        let value = if secret {
            Value::String(text.to_owned())
        } else {
            parse(text)
        };
        set(table, &key, value).map_err(|problem| wrong(&problem))?;
    }
    Ok(())
}

/// Puts `value` at `key` in `table`, making the tables on the way that the file lacks.
fn set(table: &mut Table, key: &[String], value: Value) -> Result<(), String> {
    let Some((last, sections)) = key.split_last() else {
        return Err("names no key".to_owned());
    };
    let mut table = table;
    for (depth, section) in sections.iter().enumerate() {
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        table = match entry {
            Value::Table(inner) => inner,
            Value::Array(_) => {
                return Err(format!(
                    "{} is a list of tables ([[{section}]]), whose keys only the file sets",
                    key[..=depth].join(".")
                ));
            }
            _ => return Err(format!("{} is not a table", key[..=depth].join("."))),
        };
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// A variable's text as the value it stands for: TOML where it is a number, a boolean, a
/// quoted string, an array or an inline table; the text itself otherwise (a date too, which
/// no key takes).
fn parse(text: &str) -> Value {
    let typed = format!("value = {text}")
        .parse::<Table>()
        .ok()
        .filter(|table| table.len() == 1)
        .and_then(|mut table| table.remove("value"));
    match typed {
        None | Some(Value::Datetime(_)) => Value::String(text.to_owned()),
        Some(value) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaid(file: &str, variables: &[(&str, &str)]) -> Result<Table, ConfigError> {
        let mut table: Table = file.parse().unwrap();
        let variables = variables
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)));
        overlay(&mut table, variables).map(|()| table)
    }

    #[test]
    fn a_variable_sets_its_key_typed_as_toml_reads_it() {
        let table = overlaid(
            "[api]\npage_size = 10\ntoken = \"t\"",
            &[
                ("SDM_WATCH_API__PAGE_SIZE", "40"),
                ("SDM_WATCH_POLL__INTERVAL", "30s"),
                ("SDM_WATCH_POLL__NOTIFY_ON", "[\"error\", \"done\"]"),
                ("sdm_watch_http__listen", "0.0.0.0:8080"),
                ("SDM_WATCH_STATE__PATH", "\"/var/lib/x 1\""),
                ("SDM_WATCH_API__TOKEN", "2026-01-01"),
                ("SDM_WATCH_SMTP__PASSWORD", "123456"),
                ("SDM_WATCH_CONFIG", "/etc/x.toml"),
                ("OTHER__KEY", "1"),
            ],
        )
        .unwrap();
        let expected: Table = r#"
            api = { page_size = 40, token = "2026-01-01" }
            poll = { interval = "30s", notify_on = ["error", "done"] }
            http = { listen = "0.0.0.0:8080" }
            state = { path = "/var/lib/x 1" }
            smtp = { password = "123456" }
        "#
        .parse()
        .unwrap();
        assert_eq!(table, expected);
    }

    #[test]
    fn a_variable_that_cannot_be_set_is_named() {
        let error = overlaid(
            "[[webhook]]\nname = \"a\"",
            &[("SDM_WATCH_WEBHOOK__NAME", "b")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("webhook.name: webhook is a list"),
            "{error}"
        );
        assert!(error.contains("SDM_WATCH_WEBHOOK__NAME"), "{error}");
        let error = overlaid("", &[("SDM_WATCH_API____TOKEN", "b")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("names no key"), "{error}");
        let error = overlaid("api = 3", &[("SDM_WATCH_API__TOKEN", "b")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("api is not a table"), "{error}");
    }
}
