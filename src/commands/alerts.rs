//! `sdm-watch alerts list|show|retry`: the alerts in the store, one alert with every
//! attempt, and dead alerts queued again (the running daemon's worker picks them up within
//! seconds).

use std::io::Write;

use serde::Serialize;

use super::UsageError;
use crate::config::Config;
use crate::domain::time::{OffsetDateTime, now_ms, short_ms};
use crate::store::incidents;
use crate::store::inspect::{self, AttemptRecord};
use crate::store::outbox::{self, Alert, AlertState};

/// What `alerts list` shows, as JSON.
#[derive(Serialize)]
struct Line {
    id: String,
    state: String,
    channel: String,
    organisation: String,
    job_id: String,
    event: String,
    queued_at: String,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    silence: Option<String>,
    last_error: Option<String>,
}

impl From<&Alert> for Line {
    fn from(alert: &Alert) -> Self {
        Line {
            id: alert.id.clone(),
            state: alert.state.to_string(),
            channel: alert.channel.clone(),
            organisation: alert.organisation.clone(),
            job_id: alert.job_id.clone(),
            event: alert.event.to_string(),
            queued_at: short_ms(alert.created_ms),
            attempts: alert.attempts,
            digest: alert.digest_id.clone(),
            silence: alert.silence_id.clone(),
            last_error: alert.last_error.clone(),
        }
    }
}

pub async fn list(
    config: &Config,
    query: inspect::Query,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = super::existing_store(config).await?;
    let alerts = store.run(move |conn| inspect::list(conn, &query)).await?;
    let lines: Vec<Line> = alerts.iter().map(Line::from).collect();
    if json {
        serde_json::to_writer_pretty(&mut *out, &lines)?;
        writeln!(out)?;
        return Ok(());
    }
    if lines.is_empty() {
        writeln!(out, "no alerts match")?;
        return Ok(());
    }
    for line in &lines {
        write!(
            out,
            "{}  {:<9}  {}  {}  job {}  queued {}  attempts {}",
            line.id,
            line.state,
            line.channel,
            line.event,
            line.job_id,
            line.queued_at,
            line.attempts
        )?;
        if let Some(digest) = &line.digest {
            write!(out, "  in {digest}")?;
        }
        if let Some(silence) = &line.silence {
            write!(out, "  silenced by {silence}")?;
        }
        writeln!(out)?;
        if let Some(error) = &line.last_error {
            writeln!(
                out,
                "      last error: {}",
                crate::domain::text::escaped(error)
            )?;
        }
    }
    Ok(())
}

/// What `alerts list --incidents` shows of one incident, as JSON.
#[derive(Serialize)]
struct IncidentLine {
    state: &'static str,
    organisation: String,
    /// Empty for the watcher's own.
    job_id: String,
    condition: &'static str,
    opened_at: String,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    channels: Vec<String>,
    first_alert: String,
}

impl From<incidents::Listed> for IncidentLine {
    fn from(listed: incidents::Listed) -> Self {
        let incident = listed.incident;
        IncidentLine {
            state: if incident.resolved_ms.is_some() {
                "resolved"
            } else {
                "open"
            },
            organisation: incident.organisation,
            job_id: incident.job_id,
            condition: incident.condition.as_str(),
            opened_at: short_ms(incident.opened_ms),
            resolved_at: incident.resolved_ms.map(short_ms),
            resolved_by: incident.resolved_status,
            channels: listed.channels,
            first_alert: incident.first_alert,
        }
    }
}

/// `alerts list --incidents`: the open incidents (of `org`, or all), then the most
/// recently resolved, at most `limit` of each.
pub async fn incidents(
    config: &Config,
    org: Option<&str>,
    limit: usize,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = super::existing_store(config).await?;
    let org = org.map(str::to_owned);
    let (open, resolved) = store
        .run(move |conn| incidents::overview(conn, org.as_deref(), limit))
        .await?;
    let lines: Vec<IncidentLine> = open
        .into_iter()
        .chain(resolved)
        .map(IncidentLine::from)
        .collect();
    if json {
        serde_json::to_writer_pretty(&mut *out, &lines)?;
        writeln!(out)?;
        return Ok(());
    }
    if lines.is_empty() {
        writeln!(out, "no incidents")?;
        return Ok(());
    }
    for line in &lines {
        let job = match line.job_id.as_str() {
            "" => "the watcher".to_owned(),
            id => format!("job {id}"),
        };
        write!(
            out,
            "{:<8}  {:<12}  {job}  ({})  since {}",
            line.state, line.condition, line.organisation, line.opened_at
        )?;
        if let (Some(at), Some(by)) = (&line.resolved_at, &line.resolved_by) {
            write!(out, "  resolved {at} (now {by})")?;
        }
        writeln!(out, "  channels: {}", line.channels.join(", "))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Shown {
    #[serde(flatten)]
    line: Line,
    body: serde_json::Value,
    attempts: Vec<AttemptLine>,
}

#[derive(Serialize)]
struct AttemptLine {
    at: String,
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl From<AttemptRecord> for AttemptLine {
    fn from(attempt: AttemptRecord) -> Self {
        AttemptLine {
            at: short_ms(attempt.at_ms),
            outcome: attempt.outcome,
            error: attempt.error,
        }
    }
}

pub async fn show(
    config: &Config,
    id: &str,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = super::existing_store(config).await?;
    let owned = id.to_owned();
    let found = store
        .run(move |conn| {
            let Some(alert) = outbox::get(conn, &owned)? else {
                return Ok(None);
            };
            // An alert sent in a digest was attempted as the digest.
            let attempts = match &alert.digest_id {
                Some(digest) => inspect::attempts(conn, digest)?,
                None => inspect::attempts(conn, &alert.id)?,
            };
            Ok(Some((alert, attempts)))
        })
        .await?;
    let Some((alert, attempts)) = found else {
        anyhow::bail!("no alert has the id {id:?} (see sdm-watch alerts list)");
    };
    let shown = Shown {
        line: Line::from(&alert),
        body: serde_json::from_str(&alert.payload).unwrap_or(serde_json::Value::Null),
        attempts: attempts.into_iter().map(AttemptLine::from).collect(),
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &shown)?;
        writeln!(out)?;
        return Ok(());
    }
    let line = &shown.line;
    writeln!(out, "alert:    {}", line.id)?;
    writeln!(out, "state:    {}", line.state)?;
    writeln!(out, "channel:  {}", line.channel)?;
    writeln!(out, "job:      {}", line.job_id)?;
    writeln!(out, "event:    {}", line.event)?;
    writeln!(out, "queued:   {}", line.queued_at)?;
    if let Some(digest) = &line.digest {
        writeln!(out, "digest:   {digest} (attempts below are the digest's)")?;
    }
    if let Some(silence) = &line.silence {
        writeln!(out, "silenced: by {silence}")?;
    }
    writeln!(out, "attempts: {}", shown.attempts.len())?;
    for attempt in &shown.attempts {
        write!(out, "  {}  {}", attempt.at, attempt.outcome)?;
        match &attempt.error {
            Some(error) => writeln!(out, "  {}", crate::domain::text::escaped(error))?,
            None => writeln!(out)?,
        }
    }
    writeln!(out, "body:")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&shown.body)?)?;
    Ok(())
}

/// Which dead alerts to queue again.
pub enum Retry {
    Ids(Vec<String>),
    Dead {
        channel: Option<String>,
        since: Option<OffsetDateTime>,
        /// Only this organisation's.
        organisation: Option<String>,
    },
}

/// Queues dead alerts again (same id, attempts from zero, `delivery.max_age` from now).
/// Returns false when a named alert was not dead.
pub async fn retry(config: &Config, which: Retry, out: &mut impl Write) -> anyhow::Result<bool> {
    let store = super::existing_store(config).await?;
    let ids: Vec<String> = match which {
        Retry::Ids(ids) if ids.is_empty() => {
            return Err(UsageError("name alert ids, or --dead".into()).into());
        }
        Retry::Ids(ids) => ids,
        Retry::Dead {
            channel,
            since,
            organisation,
        } => {
            let query = inspect::Query {
                state: Some(AlertState::Dead),
                channel,
                organisation,
                since_ms: since.map(crate::domain::time::millis),
                limit: usize::MAX >> 1,
            };
            store
                .run(move |conn| inspect::list(conn, &query))
                .await?
                .into_iter()
                .map(|alert| alert.id)
                .collect()
        }
    };
    let what = match ids.as_slice() {
        [one] => one.clone(),
        many => format!("{} alerts", many.len()),
    };
    let actor = crate::actions::Actor::cli();
    let results = crate::actions::retry(&store, ids, now_ms(), &what, &actor).await?;
    let mut all_ok = true;
    for (id, requeued) in &results {
        if *requeued {
            writeln!(out, "queued again: {id}")?;
        } else {
            all_ok = false;
            writeln!(out, "not dead (or no such alert), left alone: {id}")?;
        }
    }
    writeln!(
        out,
        "{} alerts queued again",
        results.iter().filter(|(_, r)| *r).count()
    )?;
    Ok(all_ok)
}
