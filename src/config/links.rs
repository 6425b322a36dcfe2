//! `[links]`: pages for people. `job` is a URL with `{id}` and `{project}` in it; every
//! alert then carries the job's page as `data.link`, and chat messages and e-mails show
//! it as a button or a link. `status_page` is where people find sdm-watch's own page
//! (PagerDuty shows it as the client's link).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{ConfigError, Section};

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLinks {
    pub job: Option<String>,
    pub status_page: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LinksConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_page: Option<Url>,
}

/// What may stay as it is in a path segment or a query value: RFC 3986's unreserved
/// characters. Everything else in an id is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl LinksConfig {
    pub(super) fn parse(raw: RawLinks) -> Result<LinksConfig, ConfigError> {
        let links = Section::new("links");
        let status_page = raw
            .status_page
            .map(|text| {
                Url::parse(&text)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
                    .ok_or_else(|| {
                        links.invalid("status_page", format!("{text:?} is not an http(s) URL"))
                    })
            })
            .transpose()?;
        let Some(job) = raw.job else {
            return Ok(LinksConfig {
                job: None,
                status_page,
            });
        };
        // Every `{...}` must be one of the two placeholders.
        let mut rest = job.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| {
                links.invalid(
                    "job",
                    "has a \"{\" without its \"}\" (placeholders: {id}, {project})",
                )
            })?;
            let name = &after[..close];
            if !matches!(name, "id" | "project") {
                return Err(links.invalid(
                    "job",
                    format!("{{{name}}} is not a placeholder (use {{id}} and {{project}})"),
                ));
            }
            rest = &after[close + 1..];
        }
        let sample = fill(&job, "3f1c9a2e-0000-4000-8000-000000000000", Some(17));
        Url::parse(&sample)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| links.invalid("job", format!("{job:?} does not make an http(s) URL")))?;
        Ok(LinksConfig {
            job: Some(job),
            status_page,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.job.is_none() && self.status_page.is_none()
    }

    /// The page of job `id` of `project`, if `[links] job` is set. An unknown project
    /// leaves its placeholder empty.
    pub fn job_link(&self, id: &str, project: Option<i64>) -> Option<String> {
        self.job.as_deref().map(|job| fill(job, id, project))
    }
}

fn fill(template: &str, id: &str, project: Option<i64>) -> String {
    let id = utf8_percent_encode(id, UNRESERVED).to_string();
    let project = project.map(|p| p.to_string()).unwrap_or_default();
    template.replace("{id}", &id).replace("{project}", &project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_encodes_the_placeholders() {
        let links = LinksConfig::parse(RawLinks {
            job: Some("https://app.example.com/projects/{project}/jobs/{id}?x=1".into()),
            status_page: None,
        })
        .unwrap();
        assert_eq!(
            links.job_link("a b/../c?d", Some(17)).unwrap(),
            "https://app.example.com/projects/17/jobs/a%20b%2F..%2Fc%3Fd?x=1"
        );
        assert_eq!(
            links.job_link("abc", None).unwrap(),
            "https://app.example.com/projects//jobs/abc?x=1"
        );
    }

    #[test]
    fn refuses_unknown_placeholders_and_non_urls() {
        for bad in [
            "https://x/{job}",
            "https://x/{id",
            "ftp://x/{id}",
            "/jobs/{id}",
        ] {
            let error = LinksConfig::parse(RawLinks {
                job: Some(bad.into()),
                status_page: None,
            })
            .unwrap_err();
            assert_eq!(error.key(), Some("links.job"), "{bad}");
        }
    }
}
