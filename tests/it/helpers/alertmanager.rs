//! A throwaway Alertmanager for one test: Debian's `prometheus-alertmanager` on a free
//! loopback port, with a config that routes everything nowhere, its storage in a temporary
//! directory and no clustering. Killed when dropped. A test that needs one and cannot
//! start it fails with the reason; it is never skipped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ports;

const BINARY: &str = "/usr/bin/prometheus-alertmanager";
const AMTOOL: &str = "/usr/bin/amtool";

pub struct Alertmanager {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Alertmanager {
    /// Starts one and waits until it is ready (about a second).
    pub async fn start() -> Alertmanager {
        assert!(
            std::path::Path::new(BINARY).exists(),
            "this test needs Alertmanager and it is not installed: \
             apt-get install -y prometheus-alertmanager (tests/setup.sh does)"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("am.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
        )
        .expect("the config is written");
        let port = ports::free();
        let log = std::fs::File::create(dir.path().join("am.log")).expect("a log file");
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("Alertmanager starts");
        let am = Alertmanager {
            child,
            _dir: dir,
            port,
        };
        let ready = format!("{}/-/ready", am.url());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = crate::http().get(&ready).send().await
                && response.status().is_success()
            {
                return am;
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager was not ready within 30 s: {}",
                am.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`, the value for a channel's `url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("am.log")).unwrap_or_default()
    }

    /// `GET /api/v2/alerts`: the alerts it holds that have not ended.
    pub async fn alerts(&self) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts", self.url());
        let body: Value = crate::http()
            .get(&url)
            .send()
            .await
            .expect("Alertmanager answers")
            .json()
            .await
            .expect("Alertmanager answers JSON");
        body.as_array().cloned().unwrap_or_default()
    }

    /// Waits until `check` holds for its alerts; panics with them after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let alerts = self.alerts().await;
            if check(&alerts) {
                return alerts;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; Alertmanager holds {alerts:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `amtool alert query` against it: its table, as printed.
    pub fn amtool_query(&self) -> String {
        let output = Command::new(AMTOOL)
            .arg(format!("--alertmanager.url={}", self.url()))
            .args(["alert", "query"])
            .output()
            .expect("amtool runs");
        assert!(
            output.status.success(),
            "amtool failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Kills it at once (a member of a cluster that went down).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of label `name` of `alert`.
pub fn label<'a>(alert: &'a Value, name: &str) -> &'a str {
    alert["labels"][name].as_str().unwrap_or_default()
}
