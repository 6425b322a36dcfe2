//! `sdm-watch once`: one poll cycle, then every alert that is due, then exit.

use std::io::Write;

use anyhow::Context as _;

use crate::config::Config;
use crate::daemon;

/// Runs the cycle and the deliveries and reports both on `out`. An error when the cycle
/// failed (after the deliveries were reported: they are attempted whatever the cycle did).
pub async fn run(config: &Config, org: Option<&str>, out: &mut impl Write) -> anyhow::Result<()> {
    super::chosen_orgs(config, org)?;
    let (cycles, settled) = daemon::once(config.clone(), org).await?;
    let delivered = format!(
        "deliveries: {} delivered, {} to retry, {} dead",
        settled.delivered, settled.retrying, settled.dead
    );
    let named = config.names_organisations();
    let mut failed = Vec::new();
    for (name, cycle) in cycles {
        let of = if named {
            format!("organisation {name}: ")
        } else {
            String::new()
        };
        match cycle {
            Ok(summary) => writeln!(
                out,
                "{of}poll cycle: {} jobs seen, {} transitions, {} alerts queued, {} waiting for details ({} requests, {} ms)",
                summary.jobs_seen,
                summary.transitions,
                summary.alerts_queued,
                summary.alerts_held,
                summary.requests,
                summary.duration.as_millis()
            )?,
            Err(error) => failed.push((name, error)),
        }
    }
    writeln!(out, "{delivered}")?;
    out.flush()?;
    match failed.len() {
        0 => Ok(()),
        1 if !named => {
            let (_, error) = failed.remove(0);
            Err(error).context("the poll cycle failed")
        }
        _ => {
            let reasons: Vec<String> = failed
                .iter()
                .map(|(name, error)| format!("{name}: {}", crate::domain::error_chain(error)))
                .collect();
            anyhow::bail!(
                "the poll cycle failed for {} organisation(s): {}",
                failed.len(),
                reasons.join("; ")
            )
        }
    }
}
