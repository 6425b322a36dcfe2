//! Message templates (MiniJinja): compiled once when the configuration loads, checked by
//! rendering sample alerts, then rendered with the escaping their output needs. Values go
//! in through a context (`serde_json::Value`); escaping is MiniJinja's auto-escaping, so a
//! template cannot forget it: in a JSON body `{{ job.name }}` prints a JSON string, quotes
//! included, and in HTML it prints `&lt;script&gt;`.

use std::sync::Arc;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::{Serialize, Serializer};
use serde_json::json;

/// How values are escaped where the template prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Plain text (an e-mail subject or body): printed as they are.
    None,
    /// HTML: `<`, `>`, `&`, `"`, `'` and `/` become entities.
    Html,
    /// JSON: every value is printed as JSON (strings quoted and escaped); the whole
    /// output must be valid JSON.
    Json,
}

impl Escape {
    /// The escaping a body of `content_type` needs: JSON for `application/json` and
    /// `…+json`, HTML for `text/html`, none otherwise.
    pub fn for_content_type(content_type: &str) -> Escape {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") {
            Escape::Json
        } else if essence == "text/html" {
            Escape::Html
        } else {
            Escape::None
        }
    }
}

/// Why a template cannot be used: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

impl TemplateError {
    fn from_minijinja(error: &minijinja::Error) -> TemplateError {
        let what = match error.detail() {
            Some(detail) => format!("{}: {detail}", error.kind()),
            None => error.kind().to_string(),
        };
        TemplateError(match error.line() {
            Some(line) => format!("line {line}: {what}"),
            None => what,
        })
    }
}

/// A compiled template, cheap to clone.
#[derive(Clone)]
pub struct Template {
    env: Arc<Environment<'static>>,
    source: Arc<str>,
    escape: Escape,
}

const NAME: &str = "template";

impl Template {
    /// Compiles `source`. Syntax errors are found here; unknown filters, tests and
    /// variables by [`Template::check`].
    pub fn compile(source: &str, escape: Escape) -> Result<Template, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(move |_| match escape {
            Escape::None => AutoEscape::None,
            Escape::Html => AutoEscape::Html,
            Escape::Json => AutoEscape::Json,
        });
        // In text and HTML an unknown value (`null`) prints as nothing, never as `none`;
        // in JSON it stays `null`.
        env.set_formatter(move |out, state, value| {
            if value.is_none() && escape != Escape::Json {
                return Ok(());
            }
            minijinja::escape_formatter(out, state, value)
        });
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|error| TemplateError::from_minijinja(&error))?;
        Ok(Template {
            env: Arc::new(env),
            source: source.into(),
            escape,
        })
    }

    /// Renders `context`; for [`Escape::Json`] the result is checked to be JSON, so
    /// that a body is sent whole and valid or not at all.
    pub fn render(&self, context: &serde_json::Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|error| TemplateError::from_minijinja(&error))?;
        let rendered = template
            .render(Value::from(Serde(context)))
            .map_err(|error| TemplateError::from_minijinja(&error))?;
        if self.escape == Escape::Json
            && let Err(error) = serde_json::from_str::<serde_json::Value>(&rendered)
        {
            return Err(TemplateError(format!(
                "renders invalid JSON (line {} of the output, column {}: {error})",
                error.line(),
                error.column()
            )));
        }
        Ok(rendered)
    }

    /// Renders the sample alert, and the sample digest when the channel sends digests:
    /// an unknown variable, filter or test, or invalid JSON, is found before the first
    /// real alert is.
    pub fn check(&self, digests: bool, watcher: bool) -> Result<(), TemplateError> {
        self.render(&sample_alert())
            .map_err(|e| TemplateError(format!("with a sample alert: {e}")))?;
        if digests {
            self.render(&sample_digest())
                .map_err(|e| TemplateError(format!("with a sample digest: {e}")))?;
        }
        if watcher {
            self.render(&sample_watcher())
                .map_err(|e| TemplateError(format!("with a sample watcher.failing alert: {e}")))?;
        }
        Ok(())
    }

    pub fn escape(&self) -> Escape {
        self.escape
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("source", &self.source)
            .field("escape", &self.escape)
            .finish()
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// The context of one alert, as `notify` builds it (a test there keeps the two equal in
/// shape): what a template may name.
pub fn sample_alert() -> serde_json::Value {
    json!({
        "type": "job.error",
        "event": "error",
        "timestamp": "2026-11-28T10:15:02Z",
        "job": {
            "id": "3f1c9a2e-0000-4000-8000-000000000000",
            "name": "Supplier feed",
            "status": "error",
            "creation_date": "2026-11-28T10:01:00.123456Z",
            "completion_date": "2026-11-28T10:14:57.12Z",
            "project": 17,
            "step": {"id": 3},
            "message": "Column 'sku' missing"
        },
        "previous_status": "running",
        "url": "https://sdm.akeneo.cloud/api/v1/jobs/3f1c9a2e-0000-4000-8000-000000000000/",
        "link": "https://app.example.com/projects/17/jobs/3f1c9a2e-0000-4000-8000-000000000000",
        "organisation": "acme",
        "output": null,
        "headline": "Job \"Supplier feed\" is now error (was running).",
        "reminder": null,
        "pending_since": null,
        "running_since": null,
        "running_for_seconds": null,
        "resolves": null,
        "condition": null,
        "watcher": null,
        "test": false,
        "alerts": [],
        "counts": {}
    })
}

/// The context of `watcher.failing`: `watcher` holds the outage; `job` names sdm-watch
/// itself (status `failing` or `recovered`, message the last error), so that a template
/// written for job alerts renders it too.
pub fn sample_watcher() -> serde_json::Value {
    let mut alert = sample_alert();
    alert["type"] = json!("watcher.failing");
    alert["event"] = json!("watcher");
    alert["job"] = json!({
        "id": "",
        "name": "sdm-watch",
        "status": "failing",
        "creation_date": null,
        "completion_date": null,
        "project": null,
        "step": null,
        "message": "the API refused the token (401 at /api/v1/jobs/): Invalid token."
    });
    alert["previous_status"] = json!(null);
    alert["url"] = json!(null);
    alert["link"] = json!(null);
    alert["headline"] = json!(
        "sdm-watch has completed no poll cycle of https://sdm.akeneo.cloud/api/v1/ for 13m (since 2026-11-28T10:02:00Z): token_refused. Job alerts are not being sent."
    );
    alert["watcher"] = json!({
        "since": "2026-11-28T10:02:00Z",
        "failing_for_seconds": 780,
        "reason": "token_refused",
        "last_error": "the API refused the token (401 at /api/v1/jobs/): Invalid token.",
        "down_for_seconds": null,
        "watching": "https://sdm.akeneo.cloud/api/v1/"
    });
    alert
}

/// The context of a digest: `type` is `digest`, `alerts` holds each alert's context and
/// `counts` how many entered each event; the single-alert keys are empty.
pub fn sample_digest() -> serde_json::Value {
    let mut done = sample_alert();
    done["type"] = json!("job.done");
    done["event"] = json!("done");
    done["job"]["status"] = json!("done");
    done["job"]["message"] = json!(null);
    done["headline"] = json!("Job \"Supplier feed\" is now done (was running).");
    done["output"] = json!({"format_id": 3, "rows": 1200, "columns": ["sku", "price"], "file": "/var/lib/sdm-watch/output/3f1c.json"});
    let alerts = json!([sample_alert(), done]);
    json!({
        "type": "digest",
        "event": "digest",
        "timestamp": "2026-11-28T10:15:12Z",
        "job": null,
        "previous_status": null,
        "url": null,
        "link": null,
        "organisation": null,
        "output": null,
        "headline": "2 jobs: 1 done, 1 error",
        "reminder": null,
        "pending_since": null,
        "running_since": null,
        "running_for_seconds": null,
        "resolves": null,
        "condition": null,
        "watcher": null,
        "test": false,
        "alerts": alerts,
        "counts": {"done": 1, "error": 1}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_templates_print_values_as_json_so_hostile_names_stay_strings() {
        let template = Template::compile(r#"{"text": {{ job.name }}}"#, Escape::Json).unwrap();
        let mut context = sample_alert();
        context["job"]["name"] = json!(r#""}],"x":{"<script>"#);
        let body: serde_json::Value =
            serde_json::from_str(&template.render(&context).unwrap()).unwrap();
        assert_eq!(body, json!({"text": r#""}],"x":{"<script>"#}));
    }

    #[test]
    fn html_templates_escape_values() {
        let template = Template::compile("<p>{{ job.name }}</p>", Escape::Html).unwrap();
        let mut context = sample_alert();
        context["job"]["name"] = json!("<script>alert(1)</script>");
        assert_eq!(
            template.render(&context).unwrap(),
            "<p>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</p>"
        );
    }

    #[test]
    fn mistakes_are_found_by_the_check_with_their_line() {
        let syntax = Template::compile("a\n{% if %}", Escape::None).unwrap_err();
        assert!(
            syntax.to_string().starts_with("line 2: syntax error"),
            "{syntax}"
        );
        let filter = Template::compile("a\nb\n{{ job.name | shout }}", Escape::None).unwrap();
        let error = filter.check(false, false).unwrap_err().to_string();
        assert!(
            error.contains("line 3") && error.contains("shout"),
            "{error}"
        );
        let variable = Template::compile("{{ job.nmae }}", Escape::None).unwrap();
        let error = variable.check(false, false).unwrap_err().to_string();
        assert!(error.contains("undefined"), "{error}");
        let json = Template::compile(r#"{"text": "{{ job.name }}"}"#, Escape::Json).unwrap();
        let error = json.check(false, false).unwrap_err().to_string();
        assert!(error.contains("invalid JSON"), "{error}");
    }

    #[test]
    fn a_template_for_single_alerts_only_passes_unless_the_channel_sends_digests() {
        let template = Template::compile("{{ job.name }}", Escape::None).unwrap();
        template.check(false, false).unwrap();
        assert!(template.check(true, false).is_err());
        let both = Template::compile(
            "{% if type == 'digest' %}{{ alerts | length }}{% else %}{{ job.name }}{% endif %}",
            Escape::None,
        )
        .unwrap();
        both.check(true, false).unwrap();
        // A template reading the watcher's fields must guard them: job alerts have none.
        let unguarded = Template::compile("{{ watcher.reason }}", Escape::None).unwrap();
        assert!(unguarded.check(false, true).is_err());
        let guarded = Template::compile(
            "{% if watcher %}{{ watcher.reason }}{% else %}{{ job.name }}{% endif %}",
            Escape::None,
        )
        .unwrap();
        guarded.check(false, true).unwrap();
        assert_eq!(guarded.render(&sample_watcher()).unwrap(), "token_refused");
        // A template written for jobs renders the watcher's alert too.
        let jobs_only =
            Template::compile("{{ job.name }}: {{ job.status }}", Escape::None).unwrap();
        assert_eq!(
            jobs_only.render(&sample_watcher()).unwrap(),
            "sdm-watch: failing"
        );
        assert_eq!(both.render(&sample_digest()).unwrap(), "2");
    }

    #[test]
    fn none_prints_as_nothing() {
        let template = Template::compile("[{{ job.message }}]", Escape::None).unwrap();
        let mut context = sample_alert();
        context["job"]["message"] = json!(null);
        assert_eq!(template.render(&context).unwrap(), "[]");
    }
}
