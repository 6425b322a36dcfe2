//! The report as text: the table `sdm-watch report` prints and report e-mails carry.

use std::fmt::Write;

use super::Report;

/// `3h 12m`, `4m 2s`, `850ms`.
pub fn human(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".to_owned();
    };
    let ms = u64::try_from(ms).unwrap_or(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, s) => format!("{m}m {s}s"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d, h, _, _) => format!("{d}d {h}h"),
    }
}

pub fn project_name(project: Option<i64>) -> String {
    project.map_or_else(|| "?".to_owned(), |p| p.to_string())
}

/// The report as `sdm-watch report` prints it (and e-mails carry it as plain text);
/// `organisations`: a column naming each line's organisation.
pub fn table(report: &Report, organisations: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        &mut out,
        "Jobs created {} to {}\n",
        report.since, report.until
    );
    if report.projects.is_empty() {
        let _ = writeln!(&mut out, "No job finished or waiting in this period.");
        return out;
    }
    let org = |name: &str| {
        if organisations {
            format!("{name:<14}")
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        &mut out,
        "{}{:<9} {:>6} {:>6} {:>7} {:>9} {:>9} {:>9} {:>7} {:>9} {:>8}",
        org("ORGANISATION"),
        "PROJECT",
        "DONE",
        "ERROR",
        "ERRORS",
        "MEDIAN",
        "P95",
        "MAX",
        "PENDED",
        "PENDING",
        "WAITING"
    );
    for line in &report.projects {
        let _ = writeln!(
            &mut out,
            "{}{:<9} {:>6} {:>6} {:>6.1}% {:>9} {:>9} {:>9} {:>7} {:>9} {:>8}",
            org(&line.organisation),
            project_name(line.project),
            line.done,
            line.error,
            line.error_rate * 100.0,
            human(line.duration_median_ms),
            human(line.duration_p95_ms),
            human(line.duration_max_ms),
            line.pending_jobs,
            human(line.pending_median_ms),
            line.waiting
        );
    }
    let _ = writeln!(
        &mut out,
        "(PENDED: finished jobs seen waiting for action on their way; PENDING: their median time waiting)"
    );
    write_signatures(&mut out, report);
    write_slowest(&mut out, report);
    write_waiting(&mut out, report);
    out
}

/// The most frequent error signatures.
fn write_signatures(out: &mut String, report: &Report) {
    if !report.signatures.is_empty() {
        let _ = writeln!(out, "\nMost frequent errors");
        for line in &report.signatures {
            let projects: Vec<String> = line.projects.iter().map(|p| project_name(*p)).collect();
            let _ = writeln!(
                out,
                "{:>6}  {}  (projects {})\n        e.g. {}",
                line.count,
                line.signature,
                projects.join(", "),
                line.example.lines().next().unwrap_or_default()
            );
        }
    }
}

/// The slowest jobs.
fn write_slowest(out: &mut String, report: &Report) {
    if !report.slowest.is_empty() {
        let _ = writeln!(out, "\nSlowest jobs");
        for job in &report.slowest {
            let _ = writeln!(
                out,
                "{:>9}  {} (project {}, job {}){}",
                human(Some(job.duration_ms)),
                job.name.as_deref().unwrap_or(&job.id),
                project_name(job.project),
                job.id,
                if job.failed { ", failed" } else { "" }
            );
        }
    }
}

/// The jobs waiting for action now.
fn write_waiting(out: &mut String, report: &Report) {
    if !report.waiting.is_empty() {
        let _ = writeln!(out, "\nWaiting for action now");
        for job in &report.waiting {
            let _ = writeln!(
                out,
                "  since {}  {} (project {}, job {})",
                job.since.as_deref().unwrap_or("?"),
                job.name.as_deref().unwrap_or(&job.id),
                project_name(job.project),
                job.id
            );
        }
    }
}
