//! What every chat format, incident tool and HTML e-mail shows of one alert (a
//! [`Card`]), read from its payload; a scheduled report makes one of its own.

use super::payload::{About, AlertEvent, Tone, WatcherFacts};

/// What every chat format shows of one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// `error: Supplier feed`.
    pub title: String,
    /// `Job "Supplier feed" is now error (was running).`
    pub headline: String,
    pub tone: Tone,
    /// Label and value, in the order shown.
    pub facts: Vec<(&'static str, String)>,
    /// The job's error message.
    pub message: Option<String>,
    /// The job's page for people (`[links] job`).
    pub link: Option<String>,
    /// When the change was detected.
    pub timestamp: String,
    pub test: bool,
}

impl Card {
    pub fn of(event: &AlertEvent) -> Card {
        let data = &event.data;
        let job = match &data.about {
            About::Job { job, .. } => job,
            About::Watcher(facts) => return Card::of_watcher(event, facts),
        };
        let or = |value: Option<&str>, none: &str| value.unwrap_or(none).to_owned();
        let mut facts = vec![
            (
                "Project",
                job.project
                    .map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
            ),
            ("Status", job.status.clone()),
            ("Previous status", or(event.previous_status(), "(none)")),
            ("Created", or(job.creation_date.as_deref(), "unknown")),
            ("Completed", or(job.completion_date.as_deref(), "-")),
            ("Job id", job.id.clone()),
        ];
        if let Some(output) = data.output.as_ref().filter(|o| !o.is_null()) {
            let columns = output["columns"].as_array().map_or(0, Vec::len);
            facts.push((
                "Output",
                format!("{} rows, {columns} columns", output["rows"]),
            ));
        }
        if let Some(error) = &data.output_error {
            facts.push(("Output", format!("could not be fetched: {error}")));
        }
        if let Some(since) = &data.pending_since {
            facts.push(("Pending since", since.clone()));
        }
        if let Some(since) = &data.running_since {
            facts.push(("Running since", since.clone()));
        }
        Card {
            title: event.title(),
            headline: event.headline(),
            tone: event.tone(),
            facts,
            message: job.message.clone(),
            link: data.link.clone(),
            timestamp: event.timestamp.clone(),
            test: data.test,
        }
    }

    /// The watcher's outage: since when, for how long, why; the last error as the message.
    fn of_watcher(event: &AlertEvent, facts: &WatcherFacts) -> Card {
        let seconds =
            |s: u64| humantime::format_duration(std::time::Duration::from_secs(s)).to_string();
        let mut shown = vec![
            ("Watching", facts.watching.clone()),
            ("Since", facts.since.clone()),
        ];
        if let Some(s) = facts.failing_for_seconds {
            shown.push(("Failing for", seconds(s)));
        }
        if let Some(s) = facts.down_for_seconds {
            shown.push(("Down for", seconds(s)));
        }
        if let Some(reason) = &facts.reason {
            shown.push(("Reason", reason.clone()));
        }
        Card {
            title: event.title(),
            headline: event.headline(),
            tone: event.tone(),
            facts: shown,
            message: facts.last_error.clone(),
            link: None,
            timestamp: event.timestamp.clone(),
            test: false,
        }
    }

    /// A digest's line for this alert: title, project, and the error if any.
    pub fn one_line(&self) -> String {
        let project = self
            .facts
            .iter()
            .find(|(label, _)| *label == "Project")
            .map(|(_, p)| p.as_str())
            .unwrap_or("unknown");
        format!("{} (project {project})", self.title)
    }
}
