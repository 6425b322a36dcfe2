//! What a signed-in user does from the page: `POST /actions/silence` (a project or a job,
//! for a duration, with a reason), `/actions/silence/end`, `/actions/retry` (one dead alert,
//! or every dead alert of a channel) and `/actions/test-alert`. Plain HTML forms, each
//! with a token bound to the user and the time it was shown (`csrf`); a request another
//! site makes (`Origin`, `Sec-Fetch-Site`) is refused; a field missing, too long or
//! malformed is answered 400 with the reason, and nothing changes. Every action answers
//! with a page saying what was done, and is in the audit trail.

use std::sync::{Arc, OnceLock};

use serde_json::json;

use super::csrf::Csrf;
use crate::actions::{self, Actor, SetupNow};
use crate::domain::time::{now_ms, parse_duration};
use crate::ops::http::{Page, Visit};
use crate::store::outbox::AlertState;
use crate::store::silences::Silence;
use crate::store::{Store, inspect};
use crate::template::{Escape, Template};

/// The longest silence the page sets.
const LONGEST_MS: i64 = 90 * 86_400_000;

/// What acting needs.
#[derive(Clone)]
pub(super) struct Acting {
    pub store: Store,
    pub csrf: Arc<Csrf>,
    pub setup: Option<SetupNow>,
}

/// An answer page: what was done, or why nothing was.
struct Done {
    status: u16,
    title: String,
    what: String,
}

fn refused(status: u16, why: impl Into<String>) -> Done {
    Done {
        status,
        title: "Nothing was done".into(),
        what: why.into(),
    }
}

impl Acting {
    /// The forms' context for `user`: a fresh token and the channels.
    pub fn forms(&self, user: &str) -> serde_json::Value {
        let channels: Vec<String> = self
            .setup
            .as_ref()
            .map(|setup| {
                setup()
                    .channels
                    .iter()
                    .map(|(name, _)| name.to_owned())
                    .collect()
            })
            .unwrap_or_default();
        json!({"user": user, "csrf": self.csrf.issue(user, now_ms()), "channels": channels})
    }

    pub async fn act(&self, visit: Visit) -> Page {
        let done = self.judge(&visit).await;
        let depth = visit.path.matches('/').count().saturating_sub(1);
        let back = if depth == 0 {
            "./".to_owned()
        } else {
            "../".repeat(depth)
        };
        let context = json!({
            "ok": done.status == 200,
            "title": done.title,
            "what": done.what,
            "back": back,
        });
        match template().render(&context) {
            Ok(body) => Page {
                status: done.status,
                content_type: "text/html; charset=utf-8",
                body,
            },
            Err(error) => Page {
                status: 500,
                content_type: "text/plain; charset=utf-8",
                body: format!("the answer could not be rendered: {error}\n"),
            },
        }
    }

    async fn judge(&self, visit: &Visit) -> Done {
        let done = self.decide(visit).await;
        if done.status == 403 {
            // Another site's post, or a token missing, forged, expired or replayed.
            crate::ops::refused::refused(crate::ops::refused::Refusal::CsrfRefused, visit.peer);
        }
        done
    }

    async fn decide(&self, visit: &Visit) -> Done {
        if visit.method != "POST" {
            return refused(405, "actions are forms: POST them from the status page");
        }
        let Some(user) = &visit.user else {
            return refused(
                403,
                "the console is read-only without http.users_file: nobody is signed in",
            );
        };
        if let Some(why) = cross_site(visit) {
            return refused(403, why);
        }
        let form = Form(
            url::form_urlencoded::parse(&visit.body)
                .into_owned()
                .collect(),
        );
        let Some(token) = form.get("csrf") else {
            return refused(
                403,
                "the form carries no token: use the status page's forms",
            );
        };
        if let Err(why) = self.csrf.check(token, user, now_ms()) {
            return refused(403, why.reason());
        }
        let actor = Actor {
            who: user.clone(),
            address: visit.peer.to_string(),
        };
        let result = match visit.path.as_str() {
            "/actions/silence" => self.silence(&form, &actor).await,
            "/actions/silence/end" => self.end(&form, &actor).await,
            "/actions/retry" => self.retry(&form, &actor).await,
            "/actions/test-alert" => self.test_alert(&form, &actor).await,
            _ => Err(refused(404, "no such action")),
        };
        result.unwrap_or_else(|done| done)
    }

    async fn silence(&self, form: &Form, actor: &Actor) -> Result<Done, Done> {
        let target = form.required("target", 128)?;
        let reason = form.required("reason", 500)?;
        let lasts = form.required("for", 16)?;
        let lasts = parse_duration(lasts)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .filter(|ms| (1..=LONGEST_MS).contains(ms))
            .ok_or_else(|| {
                refused(
                    400,
                    format!(
                        "\"for\" must be a duration from 1s to 90d, like 1h or 2d; got {lasts:?}"
                    ),
                )
            })?;
        let (mut projects, mut jobs) = (Vec::new(), Vec::new());
        match form.get("scope") {
            Some("project") => projects.push(
                target
                    .parse::<i64>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| {
                        refused(
                            400,
                            format!("a project is a positive number; got {target:?}"),
                        )
                    })?,
            ),
            Some("job")
                if target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) =>
            {
                jobs.push(target.to_owned())
            }
            Some("job") => {
                return Err(refused(
                    400,
                    "a job id holds letters, digits, '-' and '_' only",
                ));
            }
            _ => return Err(refused(400, "\"scope\" must be project or job")),
        }
        let now = now_ms();
        let silence = Silence {
            id: format!("sil_{}", uuid::Uuid::now_v7().simple()),
            created_ms: now,
            starts_ms: now,
            ends_ms: now.saturating_add(lasts),
            reason: reason.to_owned(),
            projects,
            jobs,
            events: Vec::new(),
            organisations: Vec::new(),
        };
        let what = actions::describe(&silence);
        let id = silence.id.clone();
        actions::add_silence(&self.store, silence, actor)
            .await
            .map_err(|e| refused(503, format!("the state store failed: {e}")))?;
        Ok(Done {
            status: 200,
            title: "Silenced".into(),
            what: format!("{id}: {what}. It applies from the next poll cycle."),
        })
    }

    async fn end(&self, form: &Form, actor: &Actor) -> Result<Done, Done> {
        let id = form.required("id", 64)?;
        let ended = actions::end_silence(&self.store, id, now_ms(), actor)
            .await
            .map_err(|e| refused(503, format!("the state store failed: {e}")))?;
        if !ended {
            return Err(refused(404, format!("no silence in force has the id {id}")));
        }
        Ok(Done {
            status: 200,
            title: "Silence ended".into(),
            what: format!("{id} ended: matching alerts go out again from the next cycle."),
        })
    }

    async fn retry(&self, form: &Form, actor: &Actor) -> Result<Done, Done> {
        let (ids, what) = match (form.get("alert"), form.get("channel")) {
            (Some(alert), None) if !alert.is_empty() && alert.len() <= 64 => {
                (vec![alert.to_owned()], alert.to_owned())
            }
            (None, Some(channel)) if !channel.is_empty() && channel.len() <= 128 => {
                let query = inspect::Query {
                    state: Some(AlertState::Dead),
                    channel: Some(channel.to_owned()),
                    organisation: None,
                    since_ms: None,
                    limit: usize::MAX >> 1,
                };
                let dead = self
                    .store
                    .run(move |conn| inspect::list(conn, &query))
                    .await
                    .map_err(|e| refused(503, format!("the state store failed: {e}")))?;
                let ids = dead.into_iter().map(|alert| alert.id).collect();
                (ids, format!("every dead alert of {channel}"))
            }
            _ => {
                return Err(refused(
                    400,
                    "name one dead alert (alert) or a channel (channel)",
                ));
            }
        };
        let results = actions::retry(&self.store, ids, now_ms(), &what, actor)
            .await
            .map_err(|e| refused(503, format!("the state store failed: {e}")))?;
        let queued = results.iter().filter(|(_, queued)| *queued).count();
        Ok(Done {
            status: 200,
            title: "Queued again".into(),
            what: format!(
                "{queued} dead alert(s) queued again ({what}): they go out with the same ids."
            ),
        })
    }

    async fn test_alert(&self, form: &Form, actor: &Actor) -> Result<Done, Done> {
        let channel = form.required("channel", 128)?;
        let Some(setup) = self.setup.as_ref().map(|setup| setup()) else {
            return Err(refused(503, "the channels are not available here"));
        };
        match actions::test_alert(&self.store, &setup, channel, now_ms(), actor).await {
            Ok(Some(outcome)) if outcome == "ok" => Ok(Done {
                status: 200,
                title: "Test alert sent".into(),
                what: format!("{channel} took the test alert."),
            }),
            Ok(Some(outcome)) => Err(refused(502, format!("{channel}: {outcome}"))),
            Ok(None) => Err(refused(404, format!("no channel is named {channel}"))),
            Err(e) => Err(refused(503, format!("the state store failed: {e}"))),
        }
    }
}

/// A form's fields, as sent.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    /// A field that must be there, not empty, and at most `max` characters.
    fn required(&self, name: &str, max: usize) -> Result<&str, Done> {
        match self.get(name) {
            None | Some("") => Err(refused(400, format!("the form lacks \"{name}\""))),
            Some(value) if value.chars().count() > max => Err(refused(
                400,
                format!("\"{name}\" is longer than {max} characters"),
            )),
            Some(value) => Ok(value),
        }
    }
}

/// Why the request looks made by another site, if it does: a `Sec-Fetch-Site` other than
/// `same-origin` or `none` (browsers send it), else an `Origin` whose host is not the one
/// asked. `Origin: null` (what a page under `Referrer-Policy: no-referrer` posts, this
/// console's own included) says nothing; the token still has to be right.
fn cross_site(visit: &Visit) -> Option<String> {
    if let Some(site) = &visit.fetch_site {
        return (site != "same-origin" && site != "none").then(|| {
            format!("refused: the browser says this form came from another site ({site})")
        });
    }
    let origin = visit.origin.as_ref().filter(|origin| *origin != "null")?;
    let host = origin
        .split_once("://")
        .map_or(origin.as_str(), |(_, host)| host);
    (visit.host.as_deref() != Some(host))
        .then(|| format!("refused: the form came from {origin}, not from this console"))
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        Template::compile(include_str!("done.html"), Escape::Html)
            .expect("the action page template compiles")
    })
}
