//! The operator console on `http.listen`: `GET /`, a status page a person reads in ten
//! seconds, and `GET /status.json`, the same data for machines. Everything comes from the
//! store's read-only connection and the daemon's health, so that a page never waits for
//! a poll cycle or a delivery, and neither waits for a page.

use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::json;

use crate::domain::time::{from_millis, now_ms, rfc3339_seconds};
use crate::ops::health::{Health, LastCycle, Role};
use crate::ops::http::{Page, Pages};
use crate::store::outbox::{self, AlertState, Query};
use crate::store::{Store, StoreError, jobs, silences, transitions};
use crate::template::{Escape, Template};

/// How many of each list the page shows.
pub const ACTIVE_SHOWN: usize = 100;
pub const TRANSITIONS_SHOWN: usize = 100;
pub const ALERTS_SHOWN: usize = 20;
/// How often the page reloads itself, in seconds.
pub const REFRESH_SECONDS: u32 = 30;

/// Everything the page shows; `/status.json` is this, serialized.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub generated_at: String,
    pub version: &'static str,
    pub ready: bool,
    /// `ready`, or why not.
    pub readiness: String,
    /// This replica's part: `alone` (SQLite), `leader` or `standby` (PostgreSQL), with
    /// `replica` (its name) and, standing by, `leader` (who leads, if anyone).
    pub role: Role,
    pub last_success_at: Option<String>,
    pub last_cycle: Option<CycleView>,
    /// Tracked jobs by status, and their total.
    pub jobs: JobCounts,
    /// Jobs running or pending, oldest first (at most 100 of `jobs.active`).
    pub active: Vec<ActiveView>,
    /// The last 100 status changes the watcher saw, newest first.
    pub transitions: Vec<TransitionView>,
    /// Changes in each of the last 24 hours, oldest first.
    pub transitions_per_hour: Vec<HourCount>,
    pub alerts: AlertsView,
    /// Silences in force now.
    pub silences: Vec<SilenceView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct JobCounts {
    pub total: u64,
    pub active: u64,
    /// Always has `running`, `pending`, `done` and `error`, and any other status seen.
    pub by_status: std::collections::BTreeMap<String, u64>,
}

impl Default for JobCounts {
    fn default() -> Self {
        JobCounts {
            total: 0,
            active: 0,
            by_status: ["running", "pending", "done", "error"]
                .into_iter()
                .map(|status| (status.to_owned(), 0))
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CycleView {
    pub finished_at: String,
    pub duration_ms: u64,
    pub requests: Option<u64>,
    pub jobs_seen: Option<usize>,
    pub transitions: Option<usize>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActiveView {
    pub id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    pub status: String,
    pub since: Option<String>,
    pub age_seconds: Option<u64>,
    /// `3h 12m`.
    pub age: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TransitionView {
    pub at: String,
    pub job_id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    pub previous: Option<String>,
    pub status: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HourCount {
    /// The hour's start.
    pub hour: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertsView {
    pub pending: u64,
    pub dead: u64,
    pub silenced: u64,
    /// The most recent dead alerts, with why and how many attempts.
    pub dead_recent: Vec<AlertView>,
    /// The most recent silenced alerts (listed when silences exist).
    pub silenced_recent: Vec<AlertView>,
    /// The oldest alerts still waiting.
    pub pending_oldest: Vec<AlertView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AlertView {
    pub id: String,
    pub channel: String,
    pub job_id: String,
    pub event: String,
    pub queued_at: String,
    pub attempts: u32,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SilenceView {
    pub id: String,
    pub until: String,
    pub matches: String,
    pub reason: String,
}

fn at(ms: i64) -> String {
    from_millis(ms).map(rfc3339_seconds).unwrap_or_default()
}

/// `2d 3h`, `3h 12m`, `12m 5s`, `5s`.
pub fn age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn alert_view(alert: outbox::Alert) -> AlertView {
    AlertView {
        id: alert.id,
        channel: alert.channel,
        job_id: alert.job_id,
        event: alert.event.to_string(),
        queued_at: at(alert.created_ms),
        attempts: alert.attempts,
        error: alert.last_error,
    }
}

/// What the store says, read in one go on the read-only connection.
fn read(conn: &mut dyn crate::store::Db, now: i64) -> Result<Status, StoreError> {
    let mut counts = JobCounts::default();
    for (status, count) in jobs::count_by_status(conn)? {
        counts.total += count;
        if matches!(status.as_str(), "running" | "pending") {
            counts.active += count;
        }
        *counts.by_status.entry(status.to_string()).or_default() += count;
    }
    let active = jobs::active_oldest_first(conn, ACTIVE_SHOWN)?
        .into_iter()
        .map(|job| {
            let age_seconds = job
                .since_ms
                .map(|since| u64::try_from(now - since).unwrap_or(0) / 1000);
            ActiveView {
                since: job.since_ms.map(at),
                age: age_seconds.map(age).unwrap_or_else(|| "?".into()),
                age_seconds,
                id: job.id,
                name: job.name,
                project: job.project,
                status: job.status.to_string(),
            }
        })
        .collect();
    let transitions_seen = transitions::recent(conn, TRANSITIONS_SHOWN)?
        .into_iter()
        .map(|t| TransitionView {
            at: at(t.at_ms),
            job_id: t.job_id,
            name: t.name,
            project: t.project,
            previous: t.previous.map(|p| p.to_string()),
            status: t.status.to_string(),
        })
        .collect();
    const HOUR: i64 = 3_600_000;
    let first_hour = (now.div_euclid(HOUR) - 23) * HOUR;
    let per_hour = transitions::per_hour(conn, now, 24)?
        .into_iter()
        .enumerate()
        .map(|(i, count)| HourCount {
            hour: at(first_hour + i as i64 * HOUR),
            count,
        })
        .collect();
    let list = |conn: &mut dyn crate::store::Db, state: AlertState, limit: usize| {
        outbox::list(
            conn,
            &Query {
                state: Some(state),
                channel: None,
                since_ms: None,
                limit,
            },
        )
    };
    let in_force = silences::active(conn, now)?;
    let silenced = outbox::count(conn, AlertState::Silenced)?;
    let pending_oldest = outbox::oldest(conn, AlertState::Pending, ALERTS_SHOWN)?;
    let alerts = AlertsView {
        pending: outbox::count(conn, AlertState::Pending)?,
        dead: outbox::count(conn, AlertState::Dead)?,
        silenced,
        dead_recent: list(conn, AlertState::Dead, ALERTS_SHOWN)?
            .into_iter()
            .map(alert_view)
            .collect(),
        silenced_recent: if in_force.is_empty() && silenced == 0 {
            Vec::new()
        } else {
            list(conn, AlertState::Silenced, ALERTS_SHOWN)?
                .into_iter()
                .map(alert_view)
                .collect()
        },
        pending_oldest: pending_oldest.into_iter().map(alert_view).collect(),
    };
    Ok(Status {
        generated_at: at(now),
        version: env!("CARGO_PKG_VERSION"),
        ready: false,
        readiness: String::new(),
        role: Role::Alone,
        last_success_at: None,
        last_cycle: None,
        jobs: counts,
        active,
        transitions: transitions_seen,
        transitions_per_hour: per_hour,
        alerts,
        silences: in_force
            .iter()
            .map(|silence| SilenceView {
                id: silence.id.clone(),
                until: at(silence.ends_ms),
                matches: silence.describe(),
                reason: silence.reason.clone(),
            })
            .collect(),
    })
}

/// The console's data sources.
#[derive(Clone)]
pub struct Console {
    store: Store,
    health: Arc<Health>,
}

impl Console {
    pub fn new(store: Store, health: Arc<Health>) -> Console {
        Console { store, health }
    }

    /// The status now.
    pub async fn status(&self) -> Result<Status, StoreError> {
        let now = now_ms();
        let mut status = self.store.read(move |conn| read(conn, now)).await?;
        match self.health.readiness() {
            Ok(()) => {
                status.ready = true;
                status.readiness = "ready".into();
            }
            Err(reason) => status.readiness = reason.to_string(),
        }
        status.role = self.health.role();
        status.last_success_at = self.health.last_success_ms().map(at);
        status.last_cycle = self.health.last_cycle().map(|cycle: LastCycle| CycleView {
            finished_at: at(cycle.finished_ms),
            duration_ms: cycle.duration_ms,
            requests: cycle.requests,
            jobs_seen: cycle.jobs_seen,
            transitions: cycle.transitions,
            error: cycle.error,
        });
        Ok(status)
    }

    /// `/` and `/status.json` for the ops listener.
    pub fn pages(self) -> Pages {
        Arc::new(move |path: &str| {
            let json = match path {
                "/" => false,
                "/status.json" => true,
                _ => return None,
            };
            let console = self.clone();
            Some(Box::pin(async move {
                match console.status().await {
                    Ok(status) if json => Page {
                        status: 200,
                        content_type: "application/json",
                        body: serde_json::to_string_pretty(&status).unwrap_or_default(),
                    },
                    Ok(status) => match html(&status) {
                        Ok(body) => Page {
                            status: 200,
                            content_type: "text/html; charset=utf-8",
                            body,
                        },
                        Err(error) => Page {
                            status: 500,
                            content_type: "text/plain; charset=utf-8",
                            body: format!("the status page could not be rendered: {error}\n"),
                        },
                    },
                    Err(error) => Page {
                        status: 503,
                        content_type: "text/plain; charset=utf-8",
                        body: format!("the state store cannot be read: {error}\n"),
                    },
                }
            }) as _)
        })
    }
}

const PAGE: &str = include_str!("page.html");

fn page_template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        Template::compile(PAGE, Escape::Html).expect("the status page template compiles")
    })
}

/// Chart geometry: 24 bars in a 480 x 120 box.
const CHART_WIDTH: u64 = 480;
const CHART_HEIGHT: u64 = 100;

/// The page's HTML: `status` through `page.html`, every value HTML-escaped, and the
/// chart's bars computed here so that the SVG holds numbers only.
pub fn html(status: &Status) -> Result<String, crate::template::TemplateError> {
    let most = status
        .transitions_per_hour
        .iter()
        .map(|h| h.count)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = CHART_WIDTH / 24;
    let bars: Vec<serde_json::Value> = status
        .transitions_per_hour
        .iter()
        .enumerate()
        .map(|(i, hour)| {
            let height = hour.count * CHART_HEIGHT / most;
            json!({
                "x": i as u64 * slot + 2,
                "y": CHART_HEIGHT - height + 10,
                "width": slot - 4,
                "height": height,
                "count": hour.count,
                "hour": hour.hour.get(11..16).unwrap_or(""),
                "label": i % 6 == 0,
            })
        })
        .collect();
    let mut context = serde_json::to_value(status).unwrap_or_default();
    context["bars"] = json!(bars);
    context["most"] = json!(most);
    context["refresh"] = json!(REFRESH_SECONDS);
    context["chart_width"] = json!(CHART_WIDTH);
    context["chart_height"] = json!(CHART_HEIGHT + 30);
    page_template().render(&context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            generated_at: "2026-11-28T10:00:00Z".into(),
            version: "0",
            ready: false,
            readiness: "no poll cycle has succeeded yet".into(),
            role: Role::Alone,
            last_success_at: None,
            last_cycle: None,
            jobs: JobCounts::default(),
            active: vec![ActiveView {
                id: "a".into(),
                name: Some("<script>x</script>".into()),
                project: None,
                status: "running".into(),
                since: None,
                age_seconds: None,
                age: "?".into(),
            }],
            transitions: Vec::new(),
            transitions_per_hour: (0..24)
                .map(|i| HourCount {
                    hour: format!("2026-11-28T{i:02}:00:00Z"),
                    count: i,
                })
                .collect(),
            alerts: AlertsView::default(),
            silences: Vec::new(),
        }
    }

    #[test]
    fn the_page_renders_with_values_escaped() {
        let page = html(&sample()).unwrap();
        assert!(page.contains("&lt;script&gt;x"));
        assert!(!page.contains("<script>"));
        assert_eq!(page.matches("<rect ").count(), 24);
    }

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(65), "1m 5s");
        assert_eq!(age(3 * 3600 + 12 * 60 + 9), "3h 12m");
        assert_eq!(age(2 * 86_400 + 3 * 3600), "2d 3h");
    }
}
