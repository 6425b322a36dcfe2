//! `sdm-watch check`: the configuration, valid and printed with secrets redacted; with
//! `state.url`, the database too: reachable, its schema version, who leads.

use std::io::Write;

use crate::config::Config;
use crate::daemon::{self, leader};
use crate::store::postgres::{self, lease};
use crate::store::{Location, StoreError};

pub async fn run(
    config: &Config,
    path: &std::path::Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    writeln!(out, "# {}: valid", path.display())?;
    writeln!(
        out,
        "# effective configuration (file, then SDM_WATCH_* variables); secrets redacted"
    )?;
    out.write_all(config.to_redacted_toml().as_bytes())?;
    for org in &config.organisations {
        if let Some(why) = &org.api.token_unread {
            // Not an error here: `run`, `once` and `jobs` read it, as the service's user.
            writeln!(
                out,
                "# note: the API token of organisation {} is not readable here ({}); run, once and jobs need it",
                org.name,
                crate::domain::text::escaped(why)
            )?;
        }
    }
    if let Location::Postgres(settings) = daemon::location(&config.state)? {
        out.flush()?;
        let client = postgres::connect(&settings)
            .await
            .map_err(|error| match error {
                StoreError::Postgres { message, .. } => {
                    anyhow::anyhow!("cannot connect to {}: {message}", settings.shown())
                }
                other => other.into(),
            })?;
        let version = postgres::version(&client).await?;
        let schema = match version {
            0 => "no sdm-watch schema yet (the first replica to start creates it)".to_owned(),
            v if v > postgres::LATEST => format!(
                "schema version {v}, newer than this sdm-watch ({}): it would refuse it",
                postgres::LATEST
            ),
            v if v < postgres::LATEST => format!(
                "schema version {v} (this sdm-watch migrates it to {})",
                postgres::LATEST
            ),
            v => format!("schema version {v}"),
        };
        // Who leads each organisation (one lease each).
        let mut leaders = Vec::new();
        for org in &config.organisations {
            let leader = if version == 0 {
                "none".to_owned()
            } else {
                match lease::holder(&client, &leader::lease_of(&org.name)).await? {
                    Some(holder) if holder.live => {
                        format!("{} (token {})", holder.holder, holder.token)
                    }
                    Some(holder) => {
                        format!("none (the last, {}, let its lease lapse)", holder.holder)
                    }
                    None => "none yet".to_owned(),
                }
            };
            leaders.push((org.name.as_str(), leader));
        }
        let leaders = match leaders.as_slice() {
            [(_, leader)] => format!("leader: {leader}"),
            many => {
                let each: Vec<String> = many
                    .iter()
                    .map(|(org, leader)| format!("{org}: {leader}"))
                    .collect();
                format!("leaders: {}", each.join(", "))
            }
        };
        writeln!(out, "# state: {}: {schema}; {leaders}", settings.shown())?;
    }
    Ok(())
}
