//! What each subcommand does, over the library's modules; `dispatch` parses the command
//! line and runs one.

pub mod alerts;
pub mod audit;
pub mod check;
pub mod cli;
pub mod demo;
pub mod dispatch;
pub mod hash_password;
pub mod healthcheck;
pub mod help;
pub mod jobs;
pub mod login;
pub mod once;
mod progress;
pub mod report;
pub mod run;
pub mod silence;
pub mod state;
pub mod test_alert;

use crate::config::Config;
use crate::store::Store;

/// A command was used wrongly (exit status 2, like a bad configuration); the message
/// names the option at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The organisations `--org` chooses: the one named (which the config must have), or all.
pub fn chosen_orgs<'a>(
    config: &'a Config,
    org: Option<&str>,
) -> Result<Vec<&'a crate::config::Organisation>, UsageError> {
    match org {
        None => Ok(config.organisations.iter().collect()),
        Some(name) => config
            .organisation(name)
            .map(|org| vec![org])
            .ok_or_else(|| {
                let known: Vec<&str> = config
                    .organisations
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect();
                UsageError(format!(
                    "--org {name}: the config has no such organisation (it has: {})",
                    known.join(", ")
                ))
            }),
    }
}

/// The one organisation a command about the API talks to: `--org`'s, or the config's only one.
pub fn one_org<'a>(
    config: &'a Config,
    org: Option<&str>,
) -> Result<&'a crate::config::Organisation, UsageError> {
    let chosen = chosen_orgs(config, org)?;
    match chosen.as_slice() {
        [only] => Ok(only),
        _ => Err(UsageError(format!(
            "the config has {} organisations: give --org NAME",
            chosen.len()
        ))),
    }
}

/// The store of `config`, which must exist already: a command that reads it before the
/// daemon ever ran says so rather than creating an empty one.
/// On PostgreSQL the database is connected to (and migrated, as by any replica).
pub async fn existing_store(config: &Config) -> anyhow::Result<Store> {
    if config.state.url.is_none() {
        let path = &config.state.path;
        if !path.exists() {
            anyhow::bail!(
                "no state file at {} yet: sdm-watch has not run with this configuration",
                path.display()
            );
        }
    }
    crate::daemon::open_store(&config.state).await
}
