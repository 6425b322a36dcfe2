//! Shared set-up: configs pointing at a simulator, a client, and the real binary.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use sdm_watch::config::Config;
use sdm_watch::sdm::SdmClient;
use sdm_watch::sim::Simulator;

/// A config for `sim` with fast retries. `api_extra` is more `[api]` keys; `extra` is
/// appended TOML and must open with a section header.
pub fn config_text(sim: &Simulator, api_extra: &str, extra: &str) -> String {
    format!(
        r#"
[api]
base_url = "{base}"
token = "{token}"
timeout = "2s"
max_requests_per_second = 10
{api_extra}
[retry]
initial_interval = "50ms"
max_interval = "200ms"
max_elapsed = "5s"

[http]
listen = ""
{extra}
"#,
        base = sim.base_url(),
        token = sim.token(),
    )
}

pub fn config(text: &str) -> Config {
    Config::from_toml(text, Path::new("test.toml")).expect("test config is valid")
}

pub fn client_with(text: &str) -> SdmClient {
    let config = config(text);
    SdmClient::new(&config.api, &config.retry).expect("client builds")
}

pub fn client(sim: &Simulator) -> SdmClient {
    client_with(&config_text(sim, "", ""))
}

/// Runs the real `sdm-watch` binary with `config` written to a file, environment from `env`.
pub async fn sdm_watch(config: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("config written");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sdm-watch"));
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

/// A `sdm-watch run` child whose log lines are collected as they come.
pub struct Daemon {
    child: tokio::process::Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn start(config: &std::path::Path, env: &[(&str, &str)]) -> Daemon {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sdm-watch"));
        command
            .arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("SDM_WATCH_LOG")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        Daemon { child, log }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `count` log lines contain `text`.
    pub async fn wait_for_log(&self, text: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.log().iter().filter(|l| l.contains(text)).count() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {text:?} in the log:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args([&format!("-{name}"), &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// SIGKILL: no chance to clean up, as in a power cut.
    pub async fn kill(mut self) {
        self.signal("KILL");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    pub async fn stop(mut self) -> Vec<String> {
        self.signal("TERM");
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("stops within 15 s")
            .unwrap();
        assert_eq!(status.code(), Some(0), "{}", self.log().join("\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.log()
    }
}
