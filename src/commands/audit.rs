//! `sdm-watch audit`: the audit trail, newest first, as a table or JSON.

use std::io::Write;

use serde::Serialize;

use crate::config::Config;
use crate::domain::time::{OffsetDateTime, from_millis, millis, rfc3339_seconds};
use crate::store::audit::{self, Entry};

#[derive(Serialize)]
struct Shown<'a> {
    at: String,
    #[serde(flatten)]
    entry: &'a Entry,
}

pub async fn run(
    config: &Config,
    since: Option<OffsetDateTime>,
    limit: usize,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = super::existing_store(config).await?;
    let since_ms = since.map_or(i64::MIN, millis);
    let entries = store
        .run(move |conn| audit::since(conn, since_ms, limit))
        .await?;
    let at = |entry: &Entry| {
        from_millis(entry.at_ms)
            .map(rfc3339_seconds)
            .unwrap_or_default()
    };
    if json {
        let shown: Vec<Shown> = entries
            .iter()
            .map(|entry| Shown {
                at: at(entry),
                entry,
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &shown)?;
        writeln!(out)?;
        return Ok(());
    }
    if entries.is_empty() {
        writeln!(out, "Nothing done yet.")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20}  {:<12} {:<16} {:<13} OUTCOME / WHAT",
        "WHEN", "WHO", "FROM", "ACTION"
    )?;
    // An operator's reason (from the console, a form anyone signed in fills) is shown
    // escaped: a newline or an escape sequence in it must not forge a row.
    let shown = |text: &str| crate::domain::text::escaped(text).into_owned();
    for entry in &entries {
        writeln!(
            out,
            "{:<20}  {:<12} {:<16} {:<13} {}\n{:>65}{}",
            at(entry),
            shown(&entry.who),
            shown(&entry.address),
            shown(&entry.action),
            shown(&entry.outcome),
            "",
            shown(&entry.detail)
        )?;
    }
    Ok(())
}
