//! `sdm-watch run`: the daemon, until SIGTERM or SIGINT; SIGHUP reloads `path`.

use std::path::Path;

use crate::config::Config;
use crate::daemon;
use crate::ops::signals;

pub async fn run(config: Config, path: &Path) -> anyhow::Result<()> {
    if let Ok(text) = std::fs::read_to_string(path) {
        for warning in crate::config::exposure::warnings(path, &text) {
            tracing::warn!("{warning}");
        }
    }
    daemon::run(config, Some(path.to_owned()), signals::listen()).await
}
