//! The operator console on `http.listen`: `GET /`, a status page a person reads in ten
//! seconds, and `GET /status.json`, the same data for machines. Everything comes from the
//! store's read-only connection and the daemon's health, so that a page never waits for
//! a poll cycle or a delivery, and neither waits for a page.

use std::sync::{Arc, OnceLock};

use serde_json::json;

use crate::domain::time::now_ms;
use crate::ops::health::{Health, LastCycle};
use crate::ops::http::{Page, Pages, Visit};
use crate::store::{Store, StoreError};
use crate::template::{Escape, Template};

mod act;
mod csrf;
mod status;
mod view;
mod week;

pub use status::{
    ActiveView, AlertView, AlertsView, CycleView, HourCount, IncidentView, IncidentsView,
    JobCounts, OrgView, SilenceView, Status, TransitionView, age,
};
use status::{at, read};

/// How many of each list the page shows.
pub const ACTIVE_SHOWN: usize = 100;
pub const TRANSITIONS_SHOWN: usize = 100;
pub const ALERTS_SHOWN: usize = 20;
/// How often the page reloads itself, in seconds.
pub const REFRESH_SECONDS: u32 = 30;

/// The console's data sources, and what its forms act with.
#[derive(Clone)]
pub struct Console {
    store: Store,
    health: Arc<Health>,
    acting: act::Acting,
    week: Arc<week::Week>,
}

impl Console {
    pub fn new(store: Store, health: Arc<Health>) -> Console {
        Console {
            acting: act::Acting {
                store: store.clone(),
                csrf: Arc::new(csrf::Csrf::new()),
                setup: None,
            },
            store,
            health,
            week: Arc::default(),
        }
    }

    /// The same console, sending test alerts through the channels `setup` gives.
    pub fn with_channels(mut self, setup: crate::actions::SetupNow) -> Console {
        self.acting.setup = Some(setup);
        self
    }

    /// The status now.
    pub async fn status(&self) -> Result<Status, StoreError> {
        let now = now_ms();
        let cycles = self.health.last_cycles();
        let orgs: Vec<String> = cycles.keys().cloned().collect();
        let named = orgs.len() > 1
            || orgs
                .first()
                .is_some_and(|org| org != crate::domain::DEFAULT_ORGANISATION);
        let week = self.week.projects(&self.store, now).await?;
        let mut status = self
            .store
            .read(move |conn| read(conn, now, &orgs, named))
            .await?;
        status.week = week;
        for org in &mut status.organisations {
            org.last_cycle = cycles.get(&org.name).cloned().flatten().map(cycle_view);
            org.polled_here = self.health.leads(&org.name);
        }
        match self.health.readiness() {
            Ok(()) => {
                status.ready = true;
                status.readiness = "ready".into();
            }
            Err(reason) => status.readiness = reason.to_string(),
        }
        status.role = self.health.role();
        status.last_success_at = self.health.last_success_ms().map(at);
        status.last_cycle = self.health.last_cycle().map(cycle_view);
        Ok(status)
    }

    /// `/` and `/status.json` for the ops listener, and the forms' `/actions/...`; a
    /// signed-in user's page carries the forms.
    pub fn pages(self) -> Pages {
        Arc::new(move |visit: Visit| {
            let console = self.clone();
            if visit.path.starts_with("/actions/") {
                return Some(Box::pin(async move { console.acting.act(visit).await }) as _);
            }
            let json = match visit.path.as_str() {
                "/" => false,
                "/status.json" => true,
                _ => return None,
            };
            let forms = visit.user.as_deref().map(|user| console.acting.forms(user));
            Some(Box::pin(async move {
                match console.status().await {
                    Ok(status) if json => Page {
                        status: 200,
                        content_type: "application/json",
                        body: serde_json::to_string_pretty(&status).unwrap_or_default(),
                    },
                    Ok(status) => match html_with(&status, forms) {
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

fn cycle_view(cycle: LastCycle) -> CycleView {
    CycleView {
        finished_at: at(cycle.finished_ms),
        duration_ms: cycle.duration_ms,
        requests: cycle.requests,
        jobs_seen: cycle.jobs_seen,
        transitions: cycle.transitions,
        error: cycle.error,
    }
}

const PAGE: &str = include_str!("page.html");

fn page_template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        Template::compile(PAGE, Escape::Html).expect("the status page template compiles")
    })
}

/// The duration chart: per project of the last 7 days (the 15 with most jobs), a bar for
/// the median and one for the p95, on one scale (the longest p95), in a 480-wide box.
fn durations(status: &Status) -> serde_json::Value {
    let mut lines: Vec<&crate::report::ProjectLine> = status
        .week
        .iter()
        .filter(|line| line.duration_p95_ms.is_some())
        .collect();
    lines.sort_by_key(|line| std::cmp::Reverse(line.done + line.error));
    lines.truncate(15);
    let longest = lines
        .iter()
        .filter_map(|line| line.duration_p95_ms)
        .max()
        .unwrap_or(1)
        .max(1);
    let scale = |ms: Option<i64>| ms.unwrap_or(0).max(0).saturating_mul(360) / longest;
    let rows: Vec<serde_json::Value> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let y = i as i64 * 26 + 4;
            json!({
                "y": y,
                "label_y": y + 14,
                "label": match (line.project, status.organisations.is_empty()) {
                    (Some(p), true) => format!("project {p}"),
                    (None, true) => "project ?".to_owned(),
                    (p, false) => format!("{} {}", line.organisation, p.map_or("?".to_owned(), |p| p.to_string())),
                },
                "median": scale(line.duration_median_ms),
                "p95": scale(line.duration_p95_ms),
                "median_text": age(u64::try_from(line.duration_median_ms.unwrap_or(0) / 1000).unwrap_or(0)),
                "p95_text": age(u64::try_from(line.duration_p95_ms.unwrap_or(0) / 1000).unwrap_or(0)),
            })
        })
        .collect();
    json!({ "rows": rows, "height": rows.len() as i64 * 26 + 8 })
}

/// Chart geometry: 24 bars in a 480 x 120 box.
const CHART_WIDTH: u64 = 480;
const CHART_HEIGHT: u64 = 100;

/// The page's HTML: `status` through `page.html`, every value HTML-escaped, and the
/// chart's bars computed here so that the SVG holds numbers only.
pub fn html(status: &Status) -> Result<String, crate::template::TemplateError> {
    html_with(status, None)
}

/// The page with the forms a signed-in user acts with (`forms`: the user, a token, the
/// channels), or without any.
pub fn html_with(
    status: &Status,
    forms: Option<serde_json::Value>,
) -> Result<String, crate::template::TemplateError> {
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
    context["durations"] = durations(status);
    context["bars"] = json!(bars);
    context["most"] = json!(most);
    context["refresh"] = json!(REFRESH_SECONDS);
    context["chart_width"] = json!(CHART_WIDTH);
    context["chart_height"] = json!(CHART_HEIGHT + 30);
    context["forms"] = forms.unwrap_or(serde_json::Value::Null);
    page_template().render(&context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::health::Role;

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
                organisation: "default".into(),
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
            week: vec![crate::report::ProjectLine {
                organisation: "default".into(),
                project: Some(17),
                done: 3,
                error: 1,
                error_rate: 0.25,
                duration_median_ms: Some(65_000),
                duration_p95_ms: Some(3_600_000),
                duration_max_ms: Some(3_600_000),
                pending_jobs: 1,
                pending_median_ms: Some(600_000),
                pending_max_ms: Some(600_000),
                pending_total_ms: 600_000,
                waiting: 0,
            }],
            alerts: AlertsView::default(),
            incidents: IncidentsView {
                open: 1,
                open_recent: vec![IncidentView {
                    organisation: "default".into(),
                    job_id: "b".into(),
                    name: Some("<script>y</script>".into()),
                    condition: "error".into(),
                    opened_at: "2026-11-28T09:00:00Z".into(),
                    resolved_at: None,
                    resolved_by: None,
                    duration: "1h 0m".into(),
                    channels: vec!["<i>ops</i>".into(), "pd".into()],
                }],
                resolved_recent: Vec::new(),
            },
            silences: Vec::new(),
            organisations: Vec::new(),
            outages: vec![status::OutageView {
                organisation: "default".into(),
                since: "2026-11-28T09:50:00Z".into(),
                failing_for_seconds: 600,
                reason: "api_errors".into(),
                last_error: "the API answered 503 at <b>/api/v1/jobs/</b>".into(),
                watcher_failing_sent: true,
            }],
            audit: vec![status::AuditView {
                at: "2026-11-28T10:00:00Z".into(),
                entry: crate::store::audit::Entry {
                    at_ms: 0,
                    who: "<b>eve</b>".into(),
                    address: "192.0.2.7".into(),
                    action: "silence.add".into(),
                    detail: "project 17 until later: <i>noisy</i>".into(),
                    outcome: "ok".into(),
                },
            }],
        }
    }

    #[test]
    fn the_page_shows_an_outage_in_progress() {
        let page = html(&sample()).unwrap();
        assert!(
            page.contains("no cycle has succeeded since 2026-11-28T09:50:00Z")
                && page.contains("For 600 s (api_errors)")
                && page.contains("503 at &lt;b&gt;")
                && page.contains("watcher.failing was sent"),
            "{page}"
        );
        let mut quiet = sample();
        quiet.outages.clear();
        assert!(
            !html(&quiet)
                .unwrap()
                .contains("no cycle has succeeded since")
        );
    }

    #[test]
    fn the_page_renders_with_values_escaped() {
        let page = html(&sample()).unwrap();
        assert!(page.contains("&lt;script&gt;x"));
        assert!(
            page.contains("&lt;script&gt;y"),
            "the incident's job, escaped"
        );
        assert!(
            page.contains("&lt;i&gt;ops&lt;&#x2f;i&gt;, pd"),
            "its channels"
        );
        assert!(!page.contains("<script>") && !page.contains("<i>") && !page.contains("<b>"));
        assert!(
            page.contains("&lt;b&gt;eve&lt;&#x2f;b&gt;"),
            "the audit's user, escaped"
        );
        assert_eq!(
            page.matches("<rect ").count(),
            24 + 2,
            "24 hours, a project's two bars"
        );
        assert!(page.contains("<td class=\"num\">25.0 %</td>"), "{page}");
        assert!(page.contains("<td class=\"num\">65 s</td>"), "{page}");
        assert!(page.contains("project 17: p95 1h 0m"), "{page}");
    }

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(65), "1m 5s");
        assert_eq!(age(3 * 3600 + 12 * 60 + 9), "3h 12m");
        assert_eq!(age(2 * 86_400 + 3 * 3600), "2d 3h");
    }
}
