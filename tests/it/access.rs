//! Console sign-in (issue 26, first part) through a real `sdm-watch run`: with
//! `http.users_file`, `/` and `/status.json` need a user (argon2 from `sdm-watch
//! hash-password`, or bcrypt), `/healthz` and `/readyz` stay open, `/metrics` needs one
//! only with `metrics_auth`; wrong passwords are delayed and an address that keeps
//! failing gets 429; every answer carries the security headers; a SIGHUP reads the users
//! again, and a users file that does not read keeps the old ones.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use sdm_watch::sim::Simulator;
use testkit::cli::{binary, sdm_watch, stderr};
use testkit::config::{config_text, console_config};
use testkit::{Daemon, ports};

/// `sdm-watch hash-password --stdin` for `password`.
fn hash(password: &str) -> String {
    let mut child = std::process::Command::new(binary())
        .args(["hash-password", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(password));
    hash
}

async fn get(url: &str, user: Option<(&str, &str)>) -> reqwest::Response {
    let client = testkit::http();
    let mut request = client.get(url);
    if let Some((name, password)) = user {
        request = request.basic_auth(name, Some(password));
    }
    request.send().await.unwrap()
}

fn assert_security_headers(response: &reqwest::Response) {
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        headers.get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
}

#[tokio::test]
async fn the_console_needs_a_user_and_limits_wrong_passwords() {
    let sim = Simulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let bcrypt = bcrypt::hash("battery staple", 4).unwrap();
    std::fs::write(
        &users,
        format!("# console\nalice:{}\nbob:{bcrypt}\n", hash("correct horse")),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", ports::free());
    let users_file = format!("users_file = \"{}\"", users.display());
    let text = console_config(&sim, dir.path(), &listen, &users_file, "");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    let base = format!("http://{listen}");

    for page in ["/", "/status.json"] {
        let refused = get(&format!("{base}{page}"), None).await;
        assert_eq!(refused.status(), 401, "{page}");
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_security_headers(&refused);
        let page_for = get(&format!("{base}{page}"), Some(("alice", "correct horse"))).await;
        assert_eq!(page_for.status(), 200, "{page} for alice");
        assert_security_headers(&page_for);
    }
    assert_eq!(
        get(
            &format!("{base}/status.json"),
            Some(("bob", "battery staple"))
        )
        .await
        .status(),
        200
    );
    for open in ["/healthz", "/readyz", "/metrics"] {
        let answer = get(&format!("{base}{open}"), None).await;
        assert_eq!(answer.status(), 200, "{open} stays open");
        assert_security_headers(&answer);
    }

    // Wrong passwords: delayed, then the address is limited, the right password too.
    let started = std::time::Instant::now();
    let mut codes = Vec::new();
    for _ in 0..20 {
        let answer = get(&format!("{base}/status.json"), Some(("alice", "guess"))).await;
        if answer.status() == 429 {
            let retry: u64 = answer.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=300).contains(&retry), "{retry}");
        }
        codes.push(answer.status().as_u16());
    }
    assert_eq!(&codes[..10], [401; 10], "{codes:?}");
    assert_eq!(&codes[10..], [429; 10], "{codes:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(10 * 500),
        "failures are delayed"
    );
    assert_eq!(
        get(&format!("{base}/"), Some(("alice", "correct horse")))
            .await
            .status(),
        429
    );
    assert_eq!(get(&format!("{base}/healthz"), None).await.status(), 200);
    // The attack leaves a trace: counted by reason, and logged once a minute per address.
    let metrics = get(&format!("{base}/metrics"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sdm_watch_http_refused_total{reason=\"sign_in_failed\"} 10")
            && metrics.contains("sdm_watch_http_refused_total{reason=\"locked_out\"} 11"),
        "{metrics}"
    );
    let traces = daemon.lines_with("refused a request to the console");
    assert_eq!(traces.len(), 1, "one line a minute per address: {traces:?}");
    assert!(traces[0].contains("127.0.0.1"), "{traces:?}");
    daemon.stop().await;

    // A SIGHUP reads the users again; a file that does not read keeps the old ones.
    let listen = format!("127.0.0.1:{}", ports::free());
    let text = text.replace(&base.replace("http://", ""), &listen);
    std::fs::write(&path, &text).unwrap();
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    let base = format!("http://{listen}");
    std::fs::write(&users, format!("carol:{bcrypt}\n")).unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(
        get(&format!("{base}/"), Some(("carol", "battery staple")))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&format!("{base}/"), Some(("alice", "correct horse")))
            .await
            .status(),
        401
    );
    std::fs::write(&users, "carol secret\n").unwrap();
    daemon.signal("HUP");
    daemon
        .wait_for_log("keeping the old configuration", 1)
        .await;
    let reason = daemon
        .lines_with("keeping the old configuration")
        .join("\n");
    assert!(
        reason.contains("http.users_file") && reason.contains("line 1"),
        "{reason}"
    );
    assert_eq!(
        get(&format!("{base}/"), Some(("carol", "battery staple")))
            .await
            .status(),
        200
    );
    daemon.stop().await;

    // At start, the same file is refused with exit 2 naming the key.
    let refused = sdm_watch(&text, &["check"], &[]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("http.users_file"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test]
async fn hash_password_needs_a_terminal_or_stdin() {
    let output = std::process::Command::new(binary())
        .arg("hash-password")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--stdin"));
}

#[tokio::test]
async fn what_operators_do_on_the_command_line_is_in_the_audit_trail() {
    let sim = Simulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &sim,
        "",
        &format!(
            "[state]\npath = \"{}\"\n",
            dir.path().join("state.db").display()
        ),
    );
    let run = |args: &'static [&'static str]| {
        let text = text.clone();
        async move { sdm_watch(&text, args, &[("USER", "alice"), ("SUDO_USER", "")]).await }
    };
    let added = run(&[
        "silence",
        "add",
        "--project",
        "17",
        "--for",
        "1h",
        "--reason",
        "re-import <b>\n2026-12-05T00:00:00Z  mallory      cli              silence.end   ok\u{1b}[2J",
    ])
    .await;
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let id = String::from_utf8_lossy(&added.stdout).trim().to_owned();
    let text_end = text.clone();
    let ended = sdm_watch(&text_end, &["silence", "end", &id], &[("USER", "alice")]).await;
    assert_eq!(ended.status.code(), Some(0));
    let again = sdm_watch(&text_end, &["silence", "end", &id], &[("USER", "alice")]).await;
    assert_eq!(again.status.code(), Some(1), "no longer in force");
    let retried = run(&["alerts", "retry", "msg_nonexistent"]).await;
    assert_eq!(retried.status.code(), Some(1), "nothing was dead");

    let listed = run(&["audit", "--json"]).await;
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let entries: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let seen: Vec<(String, String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["who"], "alice");
            assert_eq!(e["address"], "cli");
            assert!(e["at"].as_str().unwrap().ends_with('Z'));
            (
                e["action"].as_str().unwrap().to_owned(),
                e["detail"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        seen[0],
        (
            "alerts.retry".into(),
            "msg_nonexistent".into(),
            "0 of 1 queued again".into()
        )
    );
    assert_eq!(
        seen[1],
        (
            "silence.end".into(),
            id.clone(),
            "no silence in force has this id".into()
        )
    );
    assert_eq!(seen[2], ("silence.end".into(), id.clone(), "ok".into()));
    assert_eq!(seen[3].0, "silence.add");
    assert!(
        seen[3].1.contains("project 17") && seen[3].1.contains("re-import <b>"),
        "{:?}",
        seen[3]
    );
    let table = run(&["audit"]).await;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("silence.add"));
    // The reason's newline and escape sequence are shown, not obeyed: no forged row.
    assert!(
        table.contains("re-import <b>\\n2026-12-05T00:00:00Z  mallory")
            && table.contains("ok\\u{1b}[2J")
            && !table.contains('\u{1b}')
            && !table
                .lines()
                .any(|line| line.starts_with("2026-12-05T00:00:00Z")),
        "{table}"
    );
}
