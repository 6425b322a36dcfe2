//! `sdm-watch silence add|list|end`: mute matching alerts for a while. Silences live in
//! the store, so the running daemon applies a new one from its next cycle.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use super::UsageError;
use crate::config::Config;
use crate::domain::time::{OffsetDateTime, from_millis, now_ms, rfc3339_seconds, short_ms};
use crate::domain::{Event, ProjectId};
use crate::store::silences::{self, Silence};

/// How long ended silences stay listed with `--all`.
const KEPT_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// What `silence add` was asked.
pub struct NewSilence {
    pub projects: Vec<ProjectId>,
    pub jobs: Vec<String>,
    pub organisations: Vec<String>,
    pub events: Vec<Event>,
    pub all: bool,
    pub lasts: Lasts,
    pub reason: String,
}

pub enum Lasts {
    For(Duration),
    Until(OffsetDateTime),
}

pub async fn add(config: &Config, new: NewSilence, out: &mut impl Write) -> anyhow::Result<()> {
    let no_matcher = new.projects.is_empty()
        && new.jobs.is_empty()
        && new.events.is_empty()
        && new.organisations.is_empty();
    if no_matcher && !new.all {
        return Err(UsageError(
            "a silence with no --project, --job, --org or --event mutes every alert: say so with --all"
                .into(),
        )
        .into());
    }
    if !no_matcher && new.all {
        return Err(UsageError(
            "--all goes alone, without --project, --job, --org or --event".into(),
        )
        .into());
    }
    if new.reason.trim().is_empty() {
        return Err(UsageError("--reason must say why".into()).into());
    }
    let now = now_ms();
    let ends_ms = match new.lasts {
        Lasts::For(duration) if duration.is_zero() => {
            return Err(UsageError("--for must be longer than zero".into()).into());
        }
        // parse_duration caps it at a century, so this neither wraps nor saturates.
        Lasts::For(duration) => {
            now.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
        }
        Lasts::Until(until) => {
            let until = crate::domain::time::millis(until);
            if until <= now {
                return Err(
                    UsageError(format!("--until {} is in the past", short_ms(until))).into(),
                );
            }
            until
        }
    };
    let silence = Silence {
        id: format!("sil_{}", uuid::Uuid::now_v7().simple()),
        created_ms: now,
        starts_ms: now,
        ends_ms,
        reason: new.reason.trim().to_owned(),
        projects: new.projects,
        jobs: new.jobs,
        events: new.events,
        organisations: new.organisations,
    };
    let store = crate::daemon::open_store(&config.state).await?;
    crate::actions::add_silence(&store, silence.clone(), &crate::actions::Actor::cli()).await?;
    writeln!(out, "{}", silence.id)?;
    Ok(())
}

#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    silence: &'a Silence,
    active: bool,
    starts: String,
    ends: String,
}

pub async fn list(
    config: &Config,
    all: bool,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = super::existing_store(config).await?;
    let now = now_ms();
    let kept_ms = KEPT_FOR.as_millis() as i64;
    let listed = store
        .run(move |conn| {
            silences::prune(conn, now - kept_ms)?;
            silences::ending_after(conn, if all { now - kept_ms } else { now })
        })
        .await?;
    let rows: Vec<Listed> = listed
        .iter()
        .map(|silence| Listed {
            silence,
            active: silence.is_active(now),
            starts: time(silence.starts_ms),
            ends: time(silence.ends_ms),
        })
        .collect();
    if json {
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no silences{}", if all { "" } else { " in force" })?;
        return Ok(());
    }
    for row in &rows {
        let s = row.silence;
        writeln!(
            out,
            "{}  {}  until {}  {}",
            s.id,
            if row.active { "active" } else { "ended " },
            short_ms(s.ends_ms),
            s.describe()
        )?;
        writeln!(out, "      reason: {}", s.reason)?;
    }
    Ok(())
}

pub async fn end(config: &Config, id: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let store = super::existing_store(config).await?;
    let actor = crate::actions::Actor::cli();
    let ended = crate::actions::end_silence(&store, id, now_ms(), &actor).await?;
    if !ended {
        anyhow::bail!("no silence in force has the id {id:?} (see sdm-watch silence list)");
    }
    writeln!(out, "{id} ended")?;
    Ok(())
}

fn time(ms: i64) -> String {
    from_millis(ms).map(rfc3339_seconds).unwrap_or_default()
}
