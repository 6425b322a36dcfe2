//! `[[organisation]]`: the SDM organisations watched, each with its own token, fair-use
//! cap and projects, defaults from `[api]` and `[poll]`. Without any table, `[api]` is the
//! one organisation, named [`DEFAULT_ORGANISATION`].

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::api::{ApiConfig, ApiToken, RawApi};
use super::error::{ConfigError, Section};
use super::value::project_ids;
use super::{PollConfig, Secret};
use crate::domain::ProjectId;

pub use crate::domain::DEFAULT_ORGANISATION;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOrganisation {
    pub name: String,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub base_url: Option<String>,
    pub max_requests_per_second: Option<f64>,
    pub ca_file: Option<PathBuf>,
    pub projects: Option<Vec<ProjectId>>,
}

/// One SDM organisation: its name, how to reach its API, and the projects watched in it.
#[derive(Clone, Debug, Serialize)]
pub struct Organisation {
    pub name: String,
    #[serde(flatten)]
    pub api: ApiConfig,
    /// The projects watched (empty: every project).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<ProjectId>,
    /// `[api]` alone, without a table: alerts do not name it, as before organisations.
    #[serde(skip)]
    pub implicit: bool,
}

/// The organisations of a config: the tables, or `[api]` as the only one.
pub(super) fn parse(
    api: RawApi,
    poll: &PollConfig,
    tables: Vec<RawOrganisation>,
    need: ApiToken,
) -> Result<Vec<Organisation>, ConfigError> {
    if tables.is_empty() {
        return Ok(vec![Organisation {
            name: DEFAULT_ORGANISATION.into(),
            api: ApiConfig::parse(api, need)?,
            projects: poll.projects.clone(),
            implicit: true,
        }]);
    }
    check_api_token(&api, &tables)?;
    let mut names = HashSet::new();
    tables
        .into_iter()
        .enumerate()
        .map(|(index, raw)| table(index, raw, &api, poll, need, &mut names))
        .collect()
}

/// A token in `[api]` beside `[[organisation]]` tables belongs to exactly one table: the
/// one without a token of its own.
fn check_api_token(api: &RawApi, tables: &[RawOrganisation]) -> Result<(), ConfigError> {
    let inheritors = tables
        .iter()
        .filter(|org| org.token.is_none() && org.token_file.is_none())
        .count();
    let api_token = if api.token_file.is_some() {
        "api.token_file"
    } else {
        "api.token"
    };
    if api.token.is_some() || api.token_file.is_some() {
        // A token in [api] could be one more organisation, or every organisation's: only
        // when exactly one table has none of its own is it clear whose it is.
        let problem = match inheritors {
            1 => None,
            0 => Some(
                "is set, but every [[organisation]] table has a token of its own, so no \
                 organisation uses it: remove it, or leave the one table it belongs to without a token"
                    .to_owned(),
            ),
            n => Some(format!(
                "would be the token of {n} organisations (every table without a token of its own): \
                 give each organisation its own token"
            )),
        };
        if let Some(problem) = problem {
            return Err(ConfigError::invalid(api_token, problem));
        }
    }
    Ok(())
}

/// `[[organisation]]` table `index`: its keys, or `[api]`'s where it sets none.
fn table(
    index: usize,
    raw: RawOrganisation,
    api: &RawApi,
    poll: &PollConfig,
    need: ApiToken,
    names: &mut HashSet<String>,
) -> Result<Organisation, ConfigError> {
    let section = Section::new(format!("organisation[{index}]"));
    check_name(&section, &raw.name)?;
    if !names.insert(raw.name.clone()) {
        return Err(section.invalid("name", format!("{:?} names two organisations", raw.name)));
    }
    let own_token = raw.token.is_some() || raw.token_file.is_some();
    if !own_token && api.token.is_none() && api.token_file.is_none() {
        return Err(section.invalid(
            "token",
            format!(
                "missing: set {} or {} (or a token in [api] that one organisation uses)",
                section.key("token"),
                section.key("token_file")
            ),
        ));
    }
    let merged = RawApi {
        base_url: raw.base_url.unwrap_or_else(|| api.base_url.clone()),
        token: if own_token {
            raw.token
        } else {
            api.token.clone()
        },
        token_file: if own_token {
            raw.token_file
        } else {
            api.token_file.clone()
        },
        ca_file: raw.ca_file.or_else(|| api.ca_file.clone()),
        max_requests_per_second: raw
            .max_requests_per_second
            .unwrap_or(api.max_requests_per_second),
        ..api.clone()
    };
    // A key the table did not set is [api]'s: its errors name [api]'s key.
    let api_config = ApiConfig::parse_in(&section, merged, need)?;
    let projects = match raw.projects {
        Some(ids) => project_ids(&section.key("projects"), ids)?,
        None => poll.projects.clone(),
    };
    Ok(Organisation {
        name: raw.name,
        api: api_config,
        projects,
        implicit: false,
    })
}

fn check_name(section: &Section, name: &str) -> Result<(), ConfigError> {
    let fine = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if fine {
        Ok(())
    } else {
        Err(section.invalid(
            "name",
            format!(
                "{name:?} is not a name of lower-case letters, digits and '-' (1 to 63, not starting with '-')"
            ),
        ))
    }
}

/// The organisations that `names` (a channel's or a command's `organisations`) keep, each
/// checked to exist.
pub(super) fn known_names(
    key: &str,
    names: Vec<String>,
    organisations: &[Organisation],
) -> Result<Vec<String>, ConfigError> {
    let mut names = names;
    if let Some(unknown) = names
        .iter()
        .find(|name| !organisations.iter().any(|org| &org.name == *name))
    {
        let known: Vec<&str> = organisations.iter().map(|org| org.name.as_str()).collect();
        return Err(ConfigError::invalid(
            key,
            format!(
                "{unknown:?} is not an organisation of this config (they are: {})",
                known.join(", ")
            ),
        ));
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}
