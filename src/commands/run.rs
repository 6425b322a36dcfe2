//! `sdm-watch run`: the daemon, until SIGTERM or SIGINT; SIGHUP reloads `path`.

use std::path::Path;

use crate::config::Config;
use crate::daemon;
use crate::ops::signals;

pub async fn run(config: Config, path: &Path) -> anyhow::Result<()> {
    daemon::run(config, Some(path.to_owned()), signals::listen()).await
}
