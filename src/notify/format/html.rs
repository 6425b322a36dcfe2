//! The HTML part of e-mails (`html = true`): `email.html`, a MiniJinja template rendered
//! with HTML auto-escaping against the same context as operators' templates.

use std::sync::OnceLock;

use serde_json::Value;

use crate::template::{Escape, Template, TemplateError};

const SOURCE: &str = include_str!("email.html");

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        Template::compile(SOURCE, Escape::Html).expect("the built-in e-mail template compiles")
    })
}

/// The HTML of an alert's or a digest's e-mail, from its template context.
pub fn email(context: &Value) -> Result<String, TemplateError> {
    template().render(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{sample_alert, sample_digest};

    #[test]
    fn renders_the_samples_with_values_escaped() {
        let mut alert = sample_alert();
        alert["job"]["name"] = serde_json::json!("<script>alert(1)</script>");
        let html = email(&alert).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("#d93025"), "errors are red");
        let digest = email(&sample_digest()).unwrap();
        assert!(digest.contains("2 jobs: 1 done, 1 error"), "{digest}");
    }
}
