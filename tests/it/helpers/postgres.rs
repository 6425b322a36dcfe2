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

    fn start_with(tls: Option<(&str, &str)>) -> Postgres {
        let bin = bin_dir();
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
        run(start, "pg_ctl start");
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
