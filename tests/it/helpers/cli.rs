//! The real `sdm-watch` binary, run once per call.

use std::path::PathBuf;
use std::process::Output;

/// The `sdm-watch` binary of this build: beside the running test or benchmark executable
/// (`target/<profile>/deps/it-…` is next to `target/<profile>/sdm-watch`, which cargo
/// builds before it runs either). `SDM_WATCH_BIN` names another (an older build, for
/// before-and-after benchmark figures).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SDM_WATCH_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the running executable");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<executable>");
    profile.join("sdm-watch")
}

/// Runs `sdm-watch --config <file> <args>` with `config` written to a temporary file and
/// `env` added to an environment cleared of `SDM_WATCH_*` and `RUST_LOG`.
pub async fn sdm_watch(config: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("config written");
    let mut command = tokio::process::Command::new(binary());
    command.arg("--config").arg(&path).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("SDM_WATCH_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().await.expect("sdm-watch runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
