//! `sdm-watch test-alert`: a clearly marked alert through every channel, or one, now.

use std::io::Write;

use crate::config::Config;
use crate::notify::alerts::new_alert_id;
use crate::notify::{AlertEvent, Attempt, Channels, Message};

/// Sends one test alert per selected channel and reports each. Returns whether all worked.
pub async fn run(
    config: &Config,
    only: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let channels = Channels::from_config(config)?;
    let names: Vec<&str> = channels.iter().map(|(name, _)| name).collect();
    if names.is_empty() {
        anyhow::bail!("no channels are configured: add a [[webhook]] or an [[email]] section");
    }
    if let Some(only) = only
        && channels.get(only).is_none()
    {
        anyhow::bail!(
            "no channel is named {only:?} (configured: {})",
            names.join(", ")
        );
    }
    let mut event = AlertEvent::test(time::OffsetDateTime::now_utc());
    event.data.link = event
        .job()
        .and_then(|job| config.links.job_link(&job.id, job.project));
    let payload = event.to_json();
    let mut all_ok = true;
    for (name, channel) in channels
        .iter()
        .filter(|(name, _)| only.is_none_or(|only| only == *name))
    {
        let id = new_alert_id();
        let message = Message::Alert {
            id: id.clone(),
            payload: payload.clone(),
        };
        match channel.send(&message).await {
            Attempt::Delivered => writeln!(out, "ok      {} {name} (alert {id})", channel.kind())?,
            Attempt::Retry { error, .. } | Attempt::Permanent { error } => {
                all_ok = false;
                writeln!(out, "FAILED  {} {name}: {error}", channel.kind())?;
            }
        }
    }
    Ok(all_ok)
}
