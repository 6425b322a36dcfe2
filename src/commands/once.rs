//! `sdm-watch once`: one poll cycle, then every alert that is due, then exit.

use std::io::Write;

use anyhow::Context as _;

use crate::config::Config;
use crate::daemon;

/// Runs the cycle and the deliveries and reports both on `out`. An error when the cycle
/// failed (after the deliveries were reported: they are attempted whatever the cycle did).
pub async fn run(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let (cycle, settled) = daemon::once(config.clone()).await?;
    let delivered = format!(
        "deliveries: {} delivered, {} to retry, {} dead",
        settled.delivered, settled.retrying, settled.dead
    );
    match cycle {
        Ok(summary) => writeln!(
            out,
            "poll cycle: {} jobs seen, {} transitions, {} alerts queued, {} waiting for details ({} requests, {} ms); {delivered}",
            summary.jobs_seen,
            summary.transitions,
            summary.alerts_queued,
            summary.alerts_held,
            summary.requests,
            summary.duration.as_millis()
        )?,
        Err(error) => {
            writeln!(out, "{delivered}")?;
            out.flush()?;
            return Err(error).context("the poll cycle failed");
        }
    }
    Ok(())
}
