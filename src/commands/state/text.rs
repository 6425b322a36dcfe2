//! `sdm-watch state` as text, for a terminal: what the store holds, errors escaped.

use std::io::Write;

use super::{AlertLine, OutageLine, Report, StatusCount};

pub(super) fn write(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    writeln!(out, "state: {}", report.state_path)?;
    if report.organisations.is_empty() {
        if let Some(outage) = &report.watcher_outage {
            write_outage(out, "", outage)?;
        }
        write_counts(out, "tracked jobs", &report.jobs)?;
    } else {
        for org in &report.organisations {
            if let Some(outage) = &org.watcher_outage {
                write_outage(out, &format!(" (organisation {})", org.name), outage)?;
            }
        }
        for org in &report.organisations {
            write_counts(
                out,
                &format!("organisation {}: tracked jobs", org.name),
                &org.jobs,
            )?;
        }
    }
    writeln!(out, "alerts delivered: {}", report.alerts_delivered)?;
    writeln!(out, "alerts pending delivery: {}", report.alerts_pending)?;
    for alert in &report.pending {
        write_alert(out, alert, true)?;
    }
    writeln!(out, "dead alerts: {}", report.alerts_dead)?;
    for alert in &report.dead {
        write_alert(out, alert, false)?;
    }
    writeln!(
        out,
        "alerts silenced: {} ({} silences in force; see sdm-watch silence list)",
        report.alerts_silenced, report.silences
    )?;
    write_stuck(out, report)
}

/// Changes waiting for a detail, and jobs that could not be looked up.
fn write_stuck(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    writeln!(out, "alerts waiting for details: {}", report.waiting.len())?;
    for waiting in &report.waiting {
        writeln!(
            out,
            "  job {}  {}  since {}  attempts {}  next try {}",
            waiting.job_id,
            waiting.event,
            waiting.held_since,
            waiting.attempts,
            waiting.next_attempt_at
        )?;
        if let Some(error) = &waiting.last_error {
            writeln!(
                out,
                "      last error: {}",
                crate::domain::text::escaped(error)
            )?;
        }
    }
    if !report.lookups_failing.is_empty() {
        writeln!(
            out,
            "jobs that could not be looked up: {}",
            report.lookups_failing.len()
        )?;
        for failed in &report.lookups_failing {
            writeln!(
                out,
                "  job {}  last seen {}  attempts {}  next try {}\n      last error: {}",
                failed.job_id,
                failed.status,
                failed.attempts,
                failed.next_attempt_at,
                failed.last_error
            )?;
        }
    }
    Ok(())
}

fn write_outage(out: &mut impl Write, of: &str, outage: &OutageLine) -> std::io::Result<()> {
    writeln!(
        out,
        "WATCHER FAILING{of}: no poll cycle has succeeded since {} ({}; watcher.failing {})\n      last error: {}",
        outage.since,
        outage.reason,
        if outage.alerted {
            "sent"
        } else {
            "not sent yet"
        },
        outage.last_error
    )
}

fn write_counts(out: &mut impl Write, title: &str, counts: &[StatusCount]) -> std::io::Result<()> {
    let tracked: u64 = counts.iter().map(|c| c.count).sum();
    writeln!(out, "{title}: {tracked}")?;
    for count in counts {
        writeln!(out, "  {:<10} {}", count.status, count.count)?;
    }
    Ok(())
}

fn write_alert(out: &mut impl Write, alert: &AlertLine, pending: bool) -> std::io::Result<()> {
    write!(
        out,
        "  {}  {}  job {}  {}  queued {}  attempts {}",
        alert.id, alert.channel, alert.job_id, alert.event, alert.queued_at, alert.attempts
    )?;
    if pending {
        write!(out, "  next try {}", alert.next_attempt_at)?;
    }
    match &alert.last_error {
        Some(error) => writeln!(
            out,
            "\n      last error: {}",
            crate::domain::text::escaped(error)
        ),
        None => writeln!(out),
    }
}
