//! Output data of done jobs: streamed from the API into `<output.dir>/<job_id>.json` and
//! made visible only when complete (temporary file in the same directory, fsync, rename),
//! summarised (row count, columns in first-seen order) without holding the rows in memory,
//! and removed after `output.retention`.

mod error;
mod summary;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

use crate::config::OutputConfig;
use crate::sdm::{DataBody, SdmClient};

pub use error::OutputError;
pub use summary::summarise;

/// Leftover partial downloads (from a crash) older than this are removed with expired files.
const PARTIAL_FILE_MAX_AGE: Duration = Duration::from_secs(3600);

/// A job's output, saved; serialised as the alert's `output` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub format_id: u32,
    pub rows: u64,
    pub columns: Vec<String>,
    pub file: PathBuf,
}

/// The file a job's rows are saved in. Job ids come from the API, so anything but letters,
/// digits, `-` and `_` is replaced: no id can name a path outside `dir`.
///
/// Another organisation than `default` prefixes its name and a dot (which no safe id
/// has), so that the same id in two organisations names two files.
pub fn file_for(dir: &Path, org: &str, job_id: &str) -> PathBuf {
    let safe: String = job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if org == crate::config::DEFAULT_ORGANISATION {
        dir.join(format!("{safe}.json"))
    } else {
        dir.join(format!("{org}.{safe}.json"))
    }
}

/// Downloads `job_id`'s rows in `format_id`, retried per `[retry]`, and saves them.
pub async fn fetch(
    client: &SdmClient,
    config: &OutputConfig,
    org: &str,
    job_id: &str,
    format_id: u32,
) -> Result<Saved, OutputError> {
    let target = file_for(&config.dir, org, job_id);
    let (partial, rows, columns) = client
        .job_data_with(job_id, format_id, |body| {
            let partial = partial_path(&target);
            async move {
                let endpoint = body.endpoint().to_owned();
                let result = receive(body, &partial).await;
                let summary = match result {
                    Ok(()) => summarise_off_thread(partial.clone(), &endpoint).await,
                    Err(error) => Err(error),
                };
                match summary {
                    Ok((rows, columns)) => Ok((partial, rows, columns)),
                    Err(error) => {
                        let _ = tokio::fs::remove_file(&partial).await;
                        Err(error)
                    }
                }
            }
        })
        .await?;
    publish(&partial, &target)
        .await
        .map_err(|source| OutputError::Save {
            path: target.clone(),
            source,
        })?;
    debug!(job_id, rows, file = %target.display(), "output saved");
    Ok(Saved {
        format_id,
        rows,
        columns,
        file: target,
    })
}

fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{:016x}.part", fastrand::u64(..)))
}

/// Writes the body to `partial` as it arrives, then makes it durable.
async fn receive(mut body: DataBody, partial: &Path) -> Result<(), OutputError> {
    let sink = |source: std::io::Error| OutputError::Save {
        path: partial.to_owned(),
        source,
    };
    let mut file = tokio::fs::File::create(partial).await.map_err(sink)?;
    while let Some(chunk) = body.chunk().await? {
        file.write_all(&chunk).await.map_err(sink)?;
    }
    file.flush().await.map_err(sink)?;
    file.sync_all().await.map_err(sink)?;
    Ok(())
}

async fn summarise_off_thread(
    path: PathBuf,
    endpoint: &str,
) -> Result<(u64, Vec<String>), OutputError> {
    let unreadable = |source| OutputError::Unreadable {
        endpoint: endpoint.to_owned(),
        source,
    };
    tokio::task::spawn_blocking(move || summarise(&path))
        .await
        .map_err(|e| unreadable(crate::rows::RowsError::Io(std::io::Error::other(e))))?
        .map_err(unreadable)
}

/// Renames `partial` over `target` and syncs the directory, so that the new name survives
/// a crash and a reader sees either the old file or the whole new one.
async fn publish(partial: &Path, target: &Path) -> std::io::Result<()> {
    tokio::fs::rename(partial, target).await?;
    if let Some(dir) = target.parent() {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(std::io::Error::other)??;
    }
    Ok(())
}

/// Removes saved outputs older than `retention`, and partial downloads a crash left behind.
/// Returns how many files went.
pub fn remove_expired(dir: &Path, retention: Option<Duration>) -> std::io::Result<usize> {
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let max_age = if name.starts_with('.') && name.ends_with(".part") {
            Some(PARTIAL_FILE_MAX_AGE)
        } else if name.ends_with(".json") {
            retention
        } else {
            None
        };
        let Some(max_age) = max_age else { continue };
        let modified = entry.metadata()?.modified()?;
        if now.duration_since(modified).unwrap_or_default() > max_age {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(error) => {
                    warn!(file = %entry.path().display(), error = %error, "cannot remove an expired output file")
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_job_id_names_a_file_outside_the_directory() {
        let dir = Path::new("/var/lib/sdm-watch/output");
        assert_eq!(
            file_for(dir, "default", "3f1c-9a"),
            dir.join("3f1c-9a.json")
        );
        assert_eq!(
            file_for(dir, "default", "../../etc/passwd"),
            dir.join("______etc_passwd.json")
        );
        assert_eq!(file_for(dir, "default", "a/b"), dir.join("a_b.json"));
        assert_eq!(file_for(dir, "acme", "a.b"), dir.join("acme.a_b.json"));
    }
}
