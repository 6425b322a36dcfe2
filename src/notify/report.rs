//! Scheduled reports as channels send them: the payload queued (`{"type": "report",
//! "timestamp", "data": {name, slot, since, until, projects, signatures, slowest,
//! waiting}}`, what a standard webhook receives as is), the [`Card`] every chat format
//! shows (a summary within its limits), and the e-mail (a plain and an HTML part).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::alerts::new_alert_id;
use super::card::Card;
use super::payload::Tone;
use crate::config::ReportConfig;
use crate::domain::Event;
use crate::report::Report;
use crate::report::text::{human, project_name, table};
use crate::store::outbox::Alert;
use crate::template::{Escape, Template, TemplateError};

/// The projects a chat card lists; the rest are counted in the headline.
const CARD_PROJECTS: usize = 6;

/// A report as queued.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: ReportData,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// The `[[report]]`'s name.
    pub name: String,
    /// The slot: the local date it was due.
    pub slot: String,
    /// Whether the config names several organisations (the table then says which).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub organisations: bool,
    #[serde(flatten)]
    pub report: Report,
}

/// The queued payload's text if it is a report, read; `None` for alerts.
pub fn read(payload: &str) -> Option<Result<ReportEvent, serde_json::Error>> {
    // Alerts' payloads start with their type; a report's says "report".
    let head: &str = payload.get(..payload.len().min(40)).unwrap_or(payload);
    head.contains("\"type\":\"report\"")
        .then(|| serde_json::from_str(payload))
}

/// One alert per channel of `config`, carrying the report, queued at `now_ms`; never
/// gathered into digests nor held by time windows: it goes out at its schedule.
pub fn alerts(config: &ReportConfig, event: &ReportEvent, now_ms: i64) -> Vec<Alert> {
    let payload = match serde_json::to_string(event) {
        Ok(payload) => payload,
        Err(_) => return Vec::new(),
    };
    config
        .channels
        .iter()
        .map(|channel| {
            Alert::new(
                new_alert_id(),
                channel,
                "",
                "",
                Event::Report,
                payload.clone(),
                now_ms,
            )
        })
        .collect()
}

impl ReportEvent {
    fn totals(&self) -> (u64, u64, usize) {
        let report = &self.data.report;
        let done = report.projects.iter().map(|p| p.done).sum();
        let error = report.projects.iter().map(|p| p.error).sum();
        (done, error, report.waiting.len())
    }

    /// `Report weekly: 1234 jobs, 41 in error (3.3 %)`.
    pub fn title(&self) -> String {
        let (done, error, _) = self.totals();
        let finished = done + error;
        let rate = if finished == 0 {
            0.0
        } else {
            error as f64 * 100.0 / finished as f64
        };
        format!(
            "Report {}: {finished} jobs finished, {error} in error ({rate:.1} %)",
            self.data.name
        )
    }

    /// The period and the totals.
    pub fn headline(&self) -> String {
        let (done, error, waiting) = self.totals();
        let report = &self.data.report;
        format!(
            "Jobs created {} to {}: {done} done, {error} in error; {waiting} waiting for action now.",
            report.since, report.until
        )
    }

    /// What chat formats show: the projects with the most jobs as facts, the top errors,
    /// the slowest jobs and the jobs waiting as the message (each format cuts it to fit).
    pub fn card(&self) -> Card {
        let report = &self.data.report;
        let mut projects: Vec<_> = report.projects.iter().collect();
        projects.sort_by_key(|p| std::cmp::Reverse(p.done + p.error));
        let mut facts: Vec<(&'static str, String)> = projects
            .iter()
            .take(CARD_PROJECTS)
            .map(|p| {
                (
                    "Project",
                    format!(
                        "{}{}: {} done, {} error ({:.1} %), median {}, p95 {}",
                        if self.data.organisations {
                            format!("{} ", p.organisation)
                        } else {
                            String::new()
                        },
                        project_name(p.project),
                        p.done,
                        p.error,
                        p.error_rate * 100.0,
                        human(p.duration_median_ms),
                        human(p.duration_p95_ms)
                    ),
                )
            })
            .collect();
        if projects.len() > CARD_PROJECTS {
            facts.push((
                "Other projects",
                (projects.len() - CARD_PROJECTS).to_string(),
            ));
        }
        let mut message = String::new();
        for s in report.signatures.iter().take(5) {
            message.push_str(&format!("{} x {}\n", s.count, s.signature));
        }
        for job in report.slowest.iter().take(3) {
            message.push_str(&format!(
                "Slowest: {} took {}\n",
                job.name.as_deref().unwrap_or(&job.id),
                human(Some(job.duration_ms))
            ));
        }
        Card {
            title: self.title(),
            headline: self.headline(),
            tone: Tone::Info,
            facts,
            message: (!message.is_empty()).then(|| message.trim_end().to_owned()),
            link: None,
            timestamp: self.timestamp.clone(),
            test: false,
        }
    }

    /// The e-mail's subject, plain text and HTML.
    pub fn email(&self) -> Result<(String, String, String), TemplateError> {
        let subject = format!("[sdm-watch] {}", self.title());
        let text = format!(
            "{}\n\n{}\n-- \nsdm-watch, report {}, slot {}\n",
            self.headline(),
            table(&self.data.report, self.data.organisations),
            self.data.name,
            self.data.slot
        );
        let html = html_template().render(&self.html_context())?;
        Ok((subject, text, html))
    }

    fn html_context(&self) -> serde_json::Value {
        let report = &self.data.report;
        let name = |name: &Option<String>, id: &str| name.clone().unwrap_or_else(|| id.to_owned());
        json!({
            "title": self.title(),
            "headline": self.headline(),
            "name": self.data.name,
            "slot": self.data.slot,
            "organisations": self.data.organisations,
            "projects": report.projects.iter().map(|p| json!({
                "organisation": p.organisation,
                "project": project_name(p.project),
                "done": p.done,
                "error": p.error,
                "error_rate": format!("{:.1} %", p.error_rate * 100.0),
                "median": human(p.duration_median_ms),
                "p95": human(p.duration_p95_ms),
                "max": human(p.duration_max_ms),
                "pending_jobs": p.pending_jobs,
                "pending": human(p.pending_median_ms),
                "waiting": p.waiting,
            })).collect::<Vec<_>>(),
            "signatures": report.signatures.iter().map(|s| json!({
                "count": s.count, "signature": s.signature, "example": s.example,
            })).collect::<Vec<_>>(),
            "slowest": report.slowest.iter().map(|j| json!({
                "took": human(Some(j.duration_ms)),
                "name": name(&j.name, &j.id),
                "project": project_name(j.project),
            })).collect::<Vec<_>>(),
            "waiting": report.waiting.iter().map(|j| json!({
                "since": j.since.clone().unwrap_or_else(|| "?".into()),
                "name": name(&j.name, &j.id),
                "project": project_name(j.project),
            })).collect::<Vec<_>>(),
        })
    }
}

fn html_template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        Template::compile(include_str!("format/report.html"), Escape::Html)
            .expect("the built-in report template compiles")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::format::{discord, google_chat, slack, teams};
    use crate::report::{ProjectLine, SignatureLine};

    /// A large report: 40 projects, 10 signatures of 5,000 characters.
    fn big() -> ReportEvent {
        let projects = (0..40)
            .map(|p| ProjectLine {
                organisation: "default".into(),
                project: Some(p),
                done: 100 + p as u64,
                error: 3,
                error_rate: 0.03,
                duration_median_ms: Some(60_000),
                duration_p95_ms: Some(3_600_000),
                duration_max_ms: Some(7_200_000),
                pending_jobs: 1,
                pending_median_ms: Some(1_000),
                pending_max_ms: Some(1_000),
                pending_total_ms: 1_000,
                waiting: 0,
            })
            .collect();
        let signatures = (0..10)
            .map(|n| SignatureLine {
                signature: format!("{n} {}", "x".repeat(5000)),
                count: 10 - n,
                example: "y".repeat(5000),
                projects: vec![Some(1)],
            })
            .collect();
        ReportEvent {
            kind: "report".into(),
            timestamp: "2026-12-07T08:00:00Z".into(),
            data: ReportData {
                name: "weekly".into(),
                slot: "2026-12-07".into(),
                organisations: false,
                report: Report {
                    since: "2026-11-30T08:00:00Z".into(),
                    until: "2026-12-07T08:00:00Z".into(),
                    projects,
                    signatures,
                    slowest: Vec::new(),
                    waiting: Vec::new(),
                },
            },
        }
    }

    #[test]
    fn a_report_reads_back_and_every_chat_format_keeps_to_its_limits() {
        let event = big();
        let payload = serde_json::to_string(&event).unwrap();
        assert_eq!(read(&payload).unwrap().unwrap(), event);
        assert!(read(r#"{"type":"job.error","data":{}}"#).is_none());
        let card = event.card();
        assert!(
            card.title
                .contains("4900 jobs finished, 120 in error (2.4 %)"),
            "{}",
            card.title
        );
        assert_eq!(
            card.facts.len(),
            CARD_PROJECTS + 1,
            "the busiest projects, then a count"
        );
        let slack = slack::alert(&card);
        assert!(slack["blocks"].as_array().unwrap().len() <= slack::MAX_BLOCKS);
        for block in slack["blocks"].as_array().unwrap() {
            let text = block["text"]["text"].as_str().unwrap_or("");
            assert!(text.chars().count() <= slack::MAX_TEXT);
        }
        assert!(teams::alert(&card).to_string().len() <= teams::MAX_CARD_BYTES);
        assert!(google_chat::alert(&card).to_string().len() <= google_chat::MAX_MESSAGE_BYTES);
        let discord = discord::alert(&card);
        let embed = &discord["embeds"][0];
        let total = embed["title"].as_str().unwrap_or("").chars().count()
            + embed["description"].as_str().unwrap_or("").chars().count()
            + embed["fields"].as_array().map_or(0, |fields| {
                fields
                    .iter()
                    .map(|f| {
                        f["name"].as_str().unwrap_or("").chars().count()
                            + f["value"].as_str().unwrap_or("").chars().count()
                    })
                    .sum()
            })
            + embed["footer"]["text"]
                .as_str()
                .unwrap_or("")
                .chars()
                .count();
        assert!(total <= discord::MAX_EMBED_TOTAL, "{total}");
        let (subject, text, html) = event.email().unwrap();
        assert!(subject.starts_with("[sdm-watch] Report weekly"));
        assert!(text.contains("PROJECT") && html.contains("<th scope=\"col\""));
    }
}
