//! What deploying sdm-watch needs of the binary itself (issue 24): shell completions and a
//! manual page made from the command line's own definition, and files that are private
//! whatever the umask it was started with.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Simulator};
use testkit::cli::binary;
use testkit::config::config_text;

/// The binary's output for `args` (no config needed); panics unless it exits 0.
fn run(args: &[&str]) -> String {
    let output = Command::new(binary())
        .args(args)
        .env_remove("SDM_WATCH_CONFIG")
        .output()
        .expect("sdm-watch runs");
    assert!(
        output.status.success(),
        "sdm-watch {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

const SUBCOMMANDS: [&str; 8] = [
    "run",
    "once",
    "check",
    "state",
    "jobs",
    "alerts",
    "silence",
    "completions",
];

#[test]
fn completions_for_each_shell_know_every_subcommand_and_bash_s_parse() {
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sdm-watch.bash");
    std::fs::write(&path, run(&["completions", "bash"])).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // Loaded into bash, it completes the subcommands.
    let complete = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(sdm-watch al); COMP_CWORD=1; _sdm__watch sdm-watch al sdm-watch; echo \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&complete.stdout).trim(), "alerts");

    let refused = Command::new(binary())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn the_manual_page_is_roff_with_a_section_per_subcommand() {
    let page = run(&["man"]);
    assert!(page.contains(".TH sdm-watch 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!(".SH \"SDM-WATCH {}\"", sub.to_uppercase())),
            "no section for {sub}"
        );
    }
    assert!(
        page.contains("/etc/sdm\\-watch/config.toml"),
        "the default config path"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Started with umask 022 (as by hand), sdm-watch still creates its state, the state's
/// directory, the output directory and saved rows for its user alone.
#[tokio::test]
async fn files_it_creates_are_private_whatever_the_umask() {
    let sim = Simulator::start().await.unwrap();
    let job = sim.add_job(NewJob::new(Status::Running).generated_rows(3));
    let dir = tempfile::tempdir().unwrap();
    let (state, output) = (dir.path().join("state"), dir.path().join("rows"));
    let text = config_text(
        &sim,
        "",
        &format!(
            "[state]\npath = \"{}\"\n[output]\nformat_id = 3\ndir = \"{}\"\n",
            state.join("state.db").display(),
            output.display()
        ),
    );
    let config = dir.path().join("config.toml");
    std::fs::write(&config, text).unwrap();
    // The simulator answers on this test's runtime: the command is awaited, not waited on.
    let once = async || {
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 022 && exec '{}' --config '{}' once",
                binary().display(),
                config.display()
            ))
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    once().await;
    sim.set_status(&job, Status::Done, None);
    once().await;
    assert_eq!(mode(&state), 0o700, "the state's directory");
    assert_eq!(mode(&state.join("state.db")), 0o600, "the state");
    for journal in ["state.db-wal", "state.db-shm"] {
        let path = state.join(journal);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{journal}");
        }
    }
    assert_eq!(mode(&output), 0o700, "the output directory");
    let saved = output.join(format!("{job}.json"));
    assert_eq!(mode(&saved), 0o600, "saved rows");
}

/// `sdm-watch login` with the password on stdin (or no way to ask for it).
async fn login(config: &Path, args: &[&str], password: Option<&str>) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(binary())
        .arg("--config")
        .arg(config)
        .arg("login")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(password) = password {
        stdin
            .write_all(format!("{password}\n").as_bytes())
            .await
            .unwrap();
    }
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

/// `login` gets a token from the simulator's `auth/token/` and writes it where the config
/// reads it, privately and without printing it; a wrong password writes nothing; an
/// existing token stays without `--force`; without a terminal it needs `--password-stdin`.
#[tokio::test]
async fn login_writes_the_token_where_the_config_reads_it_and_nothing_on_a_refusal() {
    let sim = Simulator::start().await.unwrap();
    sim.set_login("ops@example.com", "correct horse");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("secrets").join("sdm.token");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{}\"\ntoken_file = \"{}\"\n[http]\nlisten = \"\"\n",
            sim.base_url(),
            token_file.display()
        ),
    )
    .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let wrong = login(
        &config,
        &["--email", "ops@example.com", "--password-stdin"],
        Some("nope"),
    )
    .await;
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong.stderr));
    assert!(
        text(&wrong.stderr).contains("Unable to log in with provided credentials"),
        "{}",
        text(&wrong.stderr)
    );
    assert!(!token_file.exists(), "a refusal writes nothing");

    let unasked = login(&config, &["--email", "ops@example.com"], None).await;
    assert_eq!(unasked.status.code(), Some(2), "{}", text(&unasked.stderr));
    assert!(text(&unasked.stderr).contains("--password-stdin"));

    let ok = login(
        &config,
        &["--email", "ops@example.com", "--password-stdin"],
        Some("correct horse"),
    )
    .await;
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let token = sim.token();
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    assert_eq!(mode(&token_file), 0o600);
    for output in [&ok.stdout, &ok.stderr] {
        assert!(!text(output).contains(&token), "the token is never printed");
    }
    // The config now works as is.
    let check =
        testkit::cli::sdm_watch(&std::fs::read_to_string(&config).unwrap(), &["check"], &[]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));

    std::fs::write(&token_file, "older-token\n").unwrap();
    let kept = login(
        &config,
        &["--email", "ops@example.com", "--password-stdin"],
        Some("correct horse"),
    )
    .await;
    assert_eq!(kept.status.code(), Some(1));
    assert!(
        text(&kept.stderr).contains("--force"),
        "{}",
        text(&kept.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        "older-token\n"
    );
    let replaced = login(
        &config,
        &["--email", "ops@example.com", "--password-stdin", "--force"],
        Some("correct horse"),
    )
    .await;
    assert_eq!(
        replaced.status.code(),
        Some(0),
        "{}",
        text(&replaced.stderr)
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    let leftovers: Vec<_> = std::fs::read_dir(token_file.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
}

/// `config schema` passes every config the project ships (checked by `check-jsonschema`,
/// which reads TOML) and fails one with a misspelt key, naming it.
#[test]
fn the_config_schema_passes_every_shipped_config_and_fails_a_typo() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, run(&["config", "schema"])).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = [
        "config/sdm-watch.example.toml",
        "deploy/config.container.toml",
        "deploy/config.replicas.toml",
        "deploy/config.systemd.toml",
    ];
    let check = |files: &[std::path::PathBuf]| {
        Command::new("python3")
            .args(["-m", "check_jsonschema", "--schemafile"])
            .arg(&schema)
            .args(files)
            .output()
            .expect("python3 runs")
    };
    let files: Vec<_> = shipped.iter().map(|file| root.join(file)).collect();
    let passed = check(&files);
    assert!(
        passed.status.success(),
        "(python3 -m pip install -r tests/requirements.txt)\n{}{}",
        String::from_utf8_lossy(&passed.stdout),
        String::from_utf8_lossy(&passed.stderr)
    );
    let example = std::fs::read_to_string(&files[0]).unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        example.replacen("\ninterval = ", "\nintervall = ", 1),
    )
    .unwrap();
    let failed = check(&[typo]);
    let said = String::from_utf8_lossy(&failed.stdout);
    assert!(
        !failed.status.success() && said.contains("'intervall' was unexpected"),
        "{said}"
    );
}

/// `config schema` and `check` agree (issue 31): one rule for empty strings (a secret is
/// refused empty, except `heartbeat.fail_url`, where empty turns it off), so the schema
/// passes what `check` accepts, and every refusal of the bad-config table that is about
/// the file's shape (an unknown key or section, a wrong type) fails the schema too.
#[test]
fn the_config_schema_and_check_agree() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, run(&["config", "schema"])).unwrap();
    let accepted = [
        "[api]\ntoken = \"t\"\n[heartbeat]\nurl = \"https://hc.example/ping/x\"\nfail_url = \"\"\n",
        "[api]\ntoken = \"t\"\n[watchdog]\nalert_after = \"0s\"\n",
    ];
    let refused = [
        "[api]\ntoken = \"\"\n",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"a\"\nurl = \"https://h.example/\"\nsecret = \"\"\n",
    ];
    let mut cases: Vec<(String, bool, String)> = Vec::new();
    for (n, text) in accepted.iter().enumerate() {
        cases.push((format!("accepted-{n}"), true, text.to_string()));
    }
    for (n, text) in refused.iter().enumerate() {
        cases.push((format!("refused-{n}"), false, text.to_string()));
    }
    for (n, (what, text, _)) in crate::config::BAD.iter().enumerate() {
        let error = sdm_watch::config::Config::from_toml(text, Path::new("bad.toml"))
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        // The loader's words for the file's shape: an unknown key or value, a wrong type.
        let message = error.to_string();
        let shape = ["unknown key", "unknown value", "expected "]
            .iter()
            .any(|said| {
                message
                    .split_once(": ")
                    .is_some_and(|(_, p)| p.starts_with(said))
            });
        if shape {
            cases.push((format!("bad-{n}"), false, text.to_string()));
        }
    }
    assert!(cases.len() > 6, "the bad-config table has shape errors");
    for (name, should_pass, text) in &cases {
        let checked = sdm_watch::config::Config::from_toml(text, Path::new("t.toml"));
        assert_eq!(
            checked.is_ok(),
            *should_pass,
            "check on {name}: {checked:?}"
        );
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let output = Command::new("python3")
            .args(["-m", "check_jsonschema", "--schemafile"])
            .arg(&schema)
            .arg(&path)
            .output()
            .expect("python3 runs");
        assert_eq!(
            output.status.success(),
            *should_pass,
            "the schema on {name} ({text:?}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// Every metric the Grafana dashboard names is one a running daemon exports (its PromQL
/// parses: `deploy/grafana/check.sh`, with promtool, in `.ci/run`). The config enables
/// every feature that has metrics: digests, reminders, output rows, the heartbeat.
#[tokio::test]
async fn the_grafana_dashboard_names_only_metrics_the_daemon_exports() {
    let w = testkit::World::start().await;
    w.sim.add_job(NewJob::new(Status::Running).name("Feed"));
    let listen = format!("127.0.0.1:{}", testkit::ports::free());
    let extra = format!(
        "remind_pending_every = \"1h\"\nrunning_longer_than = \"1h\"\n\
         [output]\nformat_id = 3\ndir = \"{output}\"\n\
         [heartbeat]\nurl = \"{hb}\"\nfail_url = \"{hb}/fail\"\n\
         [[webhook]]\nname = \"ops\"\nurl = \"{hook}\"\ngroup_wait = \"1m\"\n",
        output = w.dir.path().join("rows").display(),
        hb = w.hook.url("/heartbeat"),
        hook = w.hook.url("/ops"),
    );
    let text = w
        .config(&extra, "1h", "")
        .replace("listen = \"\"", &format!("listen = \"{listen}\""));
    let path = w.dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let daemon = testkit::Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 2).await;
    let metrics = testkit::metrics::scrape(&listen).await;
    daemon.stop().await;
    let exported: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap_or_default())
        .collect();

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/sdm-watch.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut named = std::collections::BTreeSet::new();
    let text = dashboard.to_string();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("sdm_watch_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        named.insert(name);
    }
    assert!(named.len() >= 15, "{named:?}");
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| !exported.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard names metrics the daemon does not export: {missing:?}\nexported: {exported:?}"
    );
}

/// An API answering `login` in another shape (issue 31): Django REST framework's stock
/// `{"token": ...}` is read as the token; an answer with the token under a name it does not
/// know fails naming the fields, never printing a value; a refusal's hostile reason is
/// shown escaped.
#[tokio::test]
async fn login_reads_other_shapes_and_never_prints_what_the_api_sent() {
    let answers = [
        (200, r#"{"token": "drf-token-value-0123456789"}"#),
        (
            200,
            r#"{"auth_token": "leaked-value-0123456789", "user": 7}"#,
        ),
        (
            400,
            "{\"detail\": \"no\\u001b[2J\\nforged line\", \"email\": [\"secret-ish\"]}",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    for (n, (status, body)) in answers.into_iter().enumerate() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _server = sdm_watch::httpd::serve(listener, move |_request| async move {
            Ok(hyper::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(sdm_watch::httpd::full(bytes::Bytes::from(body)))
                .unwrap())
        });
        let token_file = dir.path().join(format!("token-{n}"));
        let config = dir.path().join(format!("config-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                "[api]\nbase_url = \"http://{addr}/api/v1/\"\ntoken_file = \"{}\"\n[http]\nlisten = \"\"\n",
                token_file.display()
            ),
        )
        .unwrap();
        let output = login(
            &config,
            &["--email", "ops@example.com", "--password-stdin"],
            Some("pw"),
        )
        .await;
        let said = text(&output.stdout) + &text(&output.stderr);
        match n {
            0 => {
                assert_eq!(output.status.code(), Some(0), "{said}");
                assert_eq!(
                    std::fs::read_to_string(&token_file).unwrap().trim(),
                    "drf-token-value-0123456789"
                );
                assert!(!said.contains("drf-token-value"), "{said}");
            }
            1 => {
                assert_eq!(output.status.code(), Some(1), "{said}");
                assert!(
                    said.contains("`auth_token`") && said.contains("`user`"),
                    "{said}"
                );
                assert!(!said.contains("leaked-value"), "{said}");
                assert!(!token_file.exists());
            }
            _ => {
                assert_eq!(output.status.code(), Some(1), "{said}");
                assert!(
                    said.contains("no\\u{1b}[2J\\nforged line") && !said.contains('\u{1b}'),
                    "{said}"
                );
                assert!(
                    said.contains("`email`") && !said.contains("secret-ish"),
                    "{said}"
                );
            }
        }
    }
}
