//! `sdm-watch run` as a child process: its log lines collected as they come, its peak
//! RSS followed, stopped with a signal and reaped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cli::binary;
use crate::process;

/// How long a daemon gets to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `sdm-watch run`; dropped, it is killed.
pub struct Daemon {
    /// `None` once reaped.
    child: Option<Child>,
    pid: u32,
    log: Arc<Mutex<Vec<String>>>,
    peak: Option<std::thread::JoinHandle<u64>>,
}

/// How a daemon ended.
pub struct Stopped {
    pub code: i32,
    /// Peak RSS over its life, KiB.
    pub peak_kib: u64,
    pub log: Vec<String>,
}

impl Daemon {
    /// Starts `sdm-watch --config <config> run` with `env` added (log level info unless
    /// `env` says otherwise, no colours).
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Daemon {
        Self::spawn(Command::new(binary()), config, env)
    }

    /// As [`Daemon::start`], under an open-files limit of `files` (soft and hard), as
    /// `ulimit -n` would set it.
    pub fn start_with_open_files(config: &Path, files: u64) -> Daemon {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(binary());
        // SAFETY: between fork and exec, setrlimit only sets the child's own limit.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: files,
                    rlim_max: files,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Self::spawn(command, config, &[])
    }

    fn spawn(mut command: Command, config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut child = command
            .arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("SDM_WATCH_LOG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sdm-watch starts");
        let pid = child.id();
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Daemon {
            child: Some(child),
            pid,
            log,
            peak: Some(process::follow_peak(pid)),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The log lines so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|line| line.contains(needle))
            .collect()
    }

    /// Waits until `count` log lines contain `needle`; panics with the log after 15 s.
    pub async fn wait_for_log(&self, needle: &str, count: usize) -> Vec<String> {
        self.wait_for_log_within(needle, count, Duration::from_secs(15))
            .await
    }

    /// As [`Daemon::wait_for_log`], for at most `timeout`.
    pub async fn wait_for_log_within(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.lines_with(needle);
            if found.len() >= count {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {count} lines with {needle:?} within {timeout:?}; the log:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends signal `name` (`HUP`, `STOP`, `CONT`, ...).
    pub fn signal(&self, name: &str) {
        process::signal(self.pid, name);
    }

    /// CPU time used so far.
    pub fn cpu(&self) -> Duration {
        process::cpu(self.pid)
    }

    /// Current RSS, KiB.
    pub fn rss_kib(&self) -> u64 {
        process::rss_kib(self.pid)
    }

    /// SIGKILL: no chance to clean up, as in a power cut.
    pub async fn kill(mut self) {
        self.signal("KILL");
        self.reap(Duration::from_secs(10)).await;
    }

    /// SIGTERM; asserts a clean exit (status 0) and returns the log.
    pub async fn stop(self) -> Vec<String> {
        let stopped = self.finish().await;
        if stopped.code != 0 {
            // The code and the end of the log first: CI keeps only part of a long message.
            let tail = stopped.log.len().saturating_sub(30);
            panic!(
                "the daemon exited with {} after SIGTERM; its last lines:\n{}",
                stopped.code,
                stopped.log[tail..].join("\n")
            );
        }
        stopped.log
    }

    /// SIGTERM, then how the daemon ended.
    pub async fn finish(mut self) -> Stopped {
        self.signal("TERM");
        let code = self.reap(STOP_TIMEOUT).await;
        let Some(code) = code else {
            let log = self.log();
            let tail = log.len().saturating_sub(30);
            panic!(
                "no exit within {STOP_TIMEOUT:?} of SIGTERM; the last lines:\n{}",
                log[tail..].join("\n")
            );
        };
        let peak_kib = self.peak.take().map_or(0, |peak| peak.join().unwrap_or(0));
        // The last lines may still be on their way through the pipe.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Stopped {
            code,
            peak_kib,
            log: self.log(),
        }
    }

    async fn reap(&mut self, timeout: Duration) -> Option<i32> {
        let pid = self.pid;
        let code = tokio::task::spawn_blocking(move || process::reap(pid, timeout))
            .await
            .expect("reaping does not panic");
        if code.is_some() {
            self.child = None;
        }
        code
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.take().is_some() {
            // SAFETY: kill with our own child's pid, not yet reaped.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
            process::reap(self.pid, Duration::from_secs(5));
        }
    }
}
