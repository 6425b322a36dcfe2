//! A throwaway PostgreSQL server for one test: Debian's binaries, a cluster in a temporary
//! directory owned by the `postgres` user (initdb refuses root), on a free loopback port,
//! trust authentication, fsync off. Stopped and removed when dropped. A test that needs
//! one and cannot start it fails with the reason; it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ports;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// More `-c name=value` server settings (TLS).
    settings: String,
}

/// Where Debian puts the server's binaries (only `psql` is on PATH).
fn bin_dir() -> PathBuf {
    for version in ["17", "16", "15", "14", "13"] {
        let dir = Path::new("/usr/lib/postgresql").join(version).join("bin");
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    panic!(
        "this test needs a PostgreSQL server and none is installed: \
         apt-get install -y postgresql (tests/setup.sh does)"
    );
}

/// Runs `program` as the `postgres` user (as root) or as ourselves.
fn as_postgres(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Postgres {
    /// Starts a new cluster; about a second.
    pub fn start() -> Postgres {
        Self::start_with(None)
    }

    /// Starts a new cluster that also accepts TLS, with this certificate and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    /// A temporary directory the server's user owns.
    fn owned_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        if unsafe { libc::geteuid() } == 0 {
            run(
                {
                    let mut chown = Command::new("chown");
                    chown.arg("postgres:postgres").arg(dir.path());
                    chown
                },
                "chown of the cluster directory",
            );
        }
        dir
    }

    fn start_with(tls: Option<(&str, &str)>) -> Postgres {
        let bin = bin_dir();
        let dir = Self::owned_dir();
        let data = dir.path().join("data");
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .arg("--locale=C.UTF-8");
        run(initdb, "initdb");
        let mut settings = String::new();
        if let Some((cert, key)) = tls {
            // The server reads them as `postgres` and refuses a key others can read.
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, pem).expect("write the server's TLS files");
                run(
                    {
                        let mut chmod = Command::new("chmod");
                        chmod.arg("600").arg(&path);
                        chmod
                    },
                    "chmod of a TLS file",
                );
                if unsafe { libc::geteuid() } == 0 {
                    run(
                        {
                            let mut chown = Command::new("chown");
                            chown.arg("postgres:postgres").arg(&path);
                            chown
                        },
                        "chown of a TLS file",
                    );
                }
            }
            settings.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        let postgres = Postgres {
            dir,
            bin,
            port: ports::free(),
            settings,
        };
        postgres.restart();
        postgres
    }

    /// A streaming-replication standby of `primary` (`pg_basebackup -R`), started on
    /// `port` (a free one if `None`). Synchronous replication is then asked of the primary
    /// (`synchronous_standby_names = '*'`), so that a commit it acknowledges is on both.
    pub fn standby_of(primary: &Postgres, port: Option<u16>) -> Postgres {
        let bin = bin_dir();
        let dir = Self::owned_dir();
        let mut backup = as_postgres(&bin.join("pg_basebackup"));
        backup
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(primary.port.to_string())
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-R", "-X", "stream", "-c", "fast"]);
        run(backup, "pg_basebackup");
        let standby = Postgres {
            dir,
            bin,
            port: port.unwrap_or_else(ports::free),
            settings: String::new(),
        };
        standby.restart();
        primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'");
        primary.psql("SELECT pg_reload_conf()");
        standby
    }

    /// Promotes this standby to primary (`pg_ctl promote`, waiting until it takes writes).
    pub fn promote(&self) {
        let mut promote = as_postgres(&self.bin.join("pg_ctl"));
        promote
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "-t", "60", "promote"]);
        run(promote, "pg_ctl promote");
    }

    /// Kills the server with SIGKILL, the postmaster and every process it started, as a
    /// crash of its host would end it; returns once none is left (but unreaped).
    pub fn kill(&self) {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).expect("the server's postmaster.pid");
        let postmaster: i32 = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap();
        let mut family = children_of(postmaster);
        family.push(postmaster);
        for pid in &family {
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while family
            .iter()
            .any(|pid| Path::new(&format!("/proc/{pid}/stat")).exists() && !is_zombie(*pid))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the killed server's processes are still there"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // A dead postmaster nobody reaped keeps its process id: the server would take the
        // lock file for a live one. After a host's crash there is no such process.
        let _ = std::fs::remove_file(&pid_file);
        for left in [".s.PGSQL.{}", ".s.PGSQL.{}.lock"] {
            let name = left.replace("{}", &self.port.to_string());
            let _ = std::fs::remove_file(self.dir.path().join(name));
        }
    }

    /// Starts the server again with more `-c name=value` settings (after [`Postgres::kill`]
    /// or [`Postgres::stop`]).
    pub fn restart_with(&mut self, settings: &str) {
        self.settings.push(' ');
        self.settings.push_str(settings);
        self.restart();
    }

    /// A connection URL for the superuser and database `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL through `psql` (to set up roles and databases).
    pub fn psql(&self, sql: &str) {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-p",
        ])
        .arg(self.port.to_string())
        .args(["-c", sql]);
        run(psql, "psql");
    }

    /// What `sql` returns, unaligned (`psql -At`).
    pub fn query(&self, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-p",
            ])
            .arg(self.port.to_string())
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// From now on, roles other than `postgres` must give their password over TCP
    /// (SCRAM), as a real server would ask.
    pub fn require_password(&self) {
        let hba = self.dir.path().join("data").join("pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\n\
             host all postgres 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
        self.psql("SELECT pg_reload_conf()");
    }

    /// Stops the server fast (`-m fast`), or at once (`-m immediate`, a crash).
    pub fn stop(&self, mode: &str) {
        let mut stop = as_postgres(&self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", mode, "-w", "stop"]);
        run(stop, "pg_ctl stop");
    }

    /// Starts the server (again, after [`Postgres::stop`]) on its port.
    pub fn restart(&self) {
        let mut start = as_postgres(&self.bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "30", "-o"])
            .arg(format!(
                "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200{}",
                self.dir.path().display(),
                self.port,
                self.settings
            ))
            .arg("start");
        let output = start.output().expect("run pg_ctl start");
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}{}\nserver.log:\n{log}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut stop = as_postgres(&self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
    }
}

/// The processes whose parent is `parent`, from /proc.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat_field(*pid, 3).and_then(|p| p.parse::<i32>().ok()) == Some(parent))
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    stat_field(pid, 2).as_deref() == Some("Z")
}

/// Field `n` (0-based: 2 is the state, 3 the parent) of /proc/PID/stat.
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, field 1, is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(n - 2).map(str::to_owned)
}
