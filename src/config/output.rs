//! `[output]`: which done jobs' rows to fetch, where to keep them, for how long.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::error::{ConfigError, Section};
use super::value::{HumanDuration, human_option, positive};
use crate::domain::ProjectId;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub format_id: Option<i64>,
    /// Project id (as a TOML key, so a string) to the format id for that project.
    #[serde(default)]
    pub projects: BTreeMap<String, i64>,
    pub dir: PathBuf,
    pub retention: Option<HumanDuration>,
    #[serde(default = "five_mebibytes")]
    pub email_attach_max_bytes: i64,
}

fn five_mebibytes() -> i64 {
    5 * 1024 * 1024
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputConfig {
    /// For jobs of projects not in `projects`; `None`: only those projects' jobs are fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_id: Option<u32>,
    #[serde(serialize_with = "project_formats")]
    pub projects: BTreeMap<ProjectId, u32>,
    pub dir: PathBuf,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "human_option"
    )]
    pub retention: Option<Duration>,
    pub email_attach_max_bytes: u64,
}

impl OutputConfig {
    /// The output format to fetch for a job of `project`, if any.
    pub fn format_for(&self, project: Option<ProjectId>) -> Option<u32> {
        project
            .and_then(|project| self.projects.get(&project).copied())
            .or(self.format_id)
    }

    pub(super) fn parse(raw: RawOutput) -> Result<OutputConfig, ConfigError> {
        let output = Section::new("output");
        let format_id = |key: &str, id: i64| match u32::try_from(id) {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(ConfigError::invalid(
                key,
                format!("a format id is a positive integer, got {id}"),
            )),
        };
        let default_format = raw
            .format_id
            .map(|id| format_id(&output.key("format_id"), id))
            .transpose()?;
        let mut projects = BTreeMap::new();
        for (project, id) in raw.projects {
            let key = output.key(&format!("projects.{project}"));
            let project_id = project
                .parse::<ProjectId>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ConfigError::invalid(&key, "the key must be a project id"))?;
            projects.insert(project_id, format_id(&key, id)?);
        }
        if default_format.is_none() && projects.is_empty() {
            return Err(output.invalid(
                "format_id",
                "missing: set output.format_id, output.projects, or both",
            ));
        }
        if raw.dir.as_os_str().is_empty() {
            return Err(output.invalid("dir", "must not be empty"));
        }
        let retention = raw
            .retention
            .map(|retention| positive(&output.key("retention"), retention.0))
            .transpose()?;
        let email_attach_max_bytes = u64::try_from(raw.email_attach_max_bytes).map_err(|_| {
            output.invalid(
                "email_attach_max_bytes",
                "must be zero (never attach) or more",
            )
        })?;
        Ok(OutputConfig {
            format_id: default_format,
            projects,
            dir: raw.dir,
            retention,
            email_attach_max_bytes,
        })
    }
}

fn project_formats<S: Serializer>(
    value: &BTreeMap<ProjectId, u32>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(value.iter().map(|(project, id)| (project.to_string(), id)))
}
