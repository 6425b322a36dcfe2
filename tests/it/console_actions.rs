//! Acting from the console (issue 26) in a real Chromium driven by Playwright
//! (`py/console_actions.py`), against a real `sdm-watch run`: a signed-in user silences a
//! project and sees the alert silenced, ends the silence, retries the dead alerts once the
//! receiver recovers and sees them delivered, sends a test alert; each is in the audit
//! list. Then the attacks: a form with a real token posted from a page on another origin,
//! a replayed token, a request another site made, fields missing, too long or hostile.

use std::time::Duration;

use serde_json::Value;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Reply, Simulator, WebhookReceiver};
use testkit::config::console_config;
use testkit::console::{csrf_token, signed_in_page};
use testkit::{Daemon, ports};

const USER: (&str, &str) = ("alice", "correct horse");

/// One step of the browser script; what the browser saw. Awaited, not blocked on: the
/// simulator and the receiver answer on this test's runtime meanwhile.
async fn browser(step: &str, base: &str, arg: &str) -> Value {
    let output = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/py/console_actions.py"
        ))
        .args([step, base, USER.0, USER.1, arg])
        .output()
        .await
        .expect("python3 runs (tests/setup.sh installs playwright)");
    assert!(
        output.status.success(),
        "browser step {step}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 30 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A form's token, read from the page as `USER` sees it.
async fn token(client: &reqwest::Client, base: &str) -> String {
    csrf_token(&signed_in_page(client, base, USER.0, USER.1).await)
}

#[tokio::test]
async fn a_signed_in_user_acts_from_the_page_and_attacks_change_nothing() {
    let sim = Simulator::start().await.unwrap();
    let hook = WebhookReceiver::start().await.unwrap();
    hook.set_default(Reply::Status(410)); // alerts die until the receiver "recovers"
    let dir = tempfile::tempdir().unwrap();
    let noisy = sim.add_job(NewJob::new(Status::Running).project(17).name("Noisy feed"));
    let failing = sim.add_job(
        NewJob::new(Status::Running)
            .project(18)
            .name("Supplier feed"),
    );
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        format!("alice:{}\n", bcrypt::hash(USER.1, 4).unwrap()),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", ports::free());
    let users_file = format!("users_file = \"{}\"", users.display());
    let ops = format!(
        "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\n",
        hook.url("/ops")
    );
    let text = console_config(&sim, dir.path(), &listen, &users_file, &ops);
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    let base = format!("http://{listen}");
    sim.set_status(&failing, Status::Error, Some("Column 'sku' missing"));
    daemon.wait_for_log("it is dead", 1).await;

    // Silence project 17 from the page; the job's next alert is recorded silenced.
    let done = browser("silence", &base, "17").await;
    assert_eq!(done["title"], "Silenced", "{done}");
    assert!(
        done["what"].as_str().unwrap().contains("project 17"),
        "{done}"
    );
    // A silence applies from the next cycle that starts after it.
    let cycles = daemon.lines_with("poll cycle done").len();
    daemon.wait_for_log("poll cycle done", cycles + 2).await;
    sim.set_status(&noisy, Status::Done, None);
    daemon.wait_for_log("alert silenced", 1).await;
    let page = browser("page", &base, "").await;
    assert_eq!(page["silenced"], 1, "{page}");
    assert_eq!(page["dead"], 1, "{page}");
    let silences = page["silences"].as_array().unwrap();
    assert_eq!(silences.len(), 1, "{page}");
    assert!(
        silences[0][3]
            .as_str()
            .unwrap()
            .contains("re-import <b>OPS-7</b>"),
        "as text: {page}"
    );

    let done = browser("end", &base, "").await;
    assert_eq!(done["title"], "Silence ended", "{done}");
    assert_eq!(
        browser("page", &base, "").await["silences"],
        Value::Array(vec![])
    );

    // The receiver recovers: retry every dead alert of ops from the page.
    hook.set_default(Reply::Status(200));
    let done = browser("retry", &base, "ops").await;
    assert_eq!(done["title"], "Queued again", "{done}");
    assert!(
        done["what"].as_str().unwrap().starts_with("1 dead alert"),
        "{done}"
    );
    let delivered = |kind: &str| {
        hook.received()
            .iter()
            .filter(|h| h.answered == 200 && h.json()["type"] == kind)
            .count()
    };
    wait_until("the retried alert delivered", || {
        delivered("job.error") == 1
    })
    .await;

    let done = browser("test", &base, "ops").await;
    assert_eq!(done["title"], "Test alert sent", "{done}");
    wait_until("the test alert", || {
        hook.received()
            .iter()
            .any(|h| h.json()["data"]["test"] == true)
    })
    .await;

    // A form posted from another origin, even with a real token, changes nothing.
    let attack = browser("attack", &base, "18").await;
    let said = attack["status_text"].as_str().unwrap();
    assert!(
        said.contains("another site") || said.contains("came from"),
        "{said}"
    );
    let page = browser("page", &base, "").await;
    assert_eq!(page["silences"], Value::Array(vec![]), "{page}");
    let audit: Vec<(String, String, String)> = page["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[1].as_str().unwrap().to_owned(),
                row[3].as_str().unwrap().to_owned(),
                row[5].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let actions: Vec<&str> = audit.iter().map(|(_, action, _)| action.as_str()).collect();
    assert_eq!(
        actions,
        ["test-alert", "alerts.retry", "silence.end", "silence.add"],
        "{audit:?}"
    );
    assert!(audit.iter().all(|(who, _, _)| who == "alice"), "{audit:?}");

    // The same attacks without a browser, each answered before anything changes.
    let client = testkit::http();
    let post = |form: Vec<(&'static str, String)>, headers: Vec<(&'static str, &'static str)>| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = client
            .post(format!("{base}/actions/silence"))
            .basic_auth(USER.0, Some(USER.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let form = |token: &str, target: &str, reason: &str| {
        vec![
            ("csrf", token.to_owned()),
            ("scope", "project".to_owned()),
            ("target", target.to_owned()),
            ("for", "1h".to_owned()),
            ("reason", reason.to_owned()),
        ]
    };
    let cross = post(
        form(&token(&client, &base).await, "18", "x"),
        vec![("sec-fetch-site", "cross-site")],
    )
    .await
    .unwrap();
    assert_eq!(cross.status(), 403);
    let good = token(&client, &base).await;
    assert_eq!(
        post(form(&good, "18", "maintenance"), vec![])
            .await
            .unwrap()
            .status(),
        200
    );
    let replayed = post(form(&good, "18", "maintenance"), vec![])
        .await
        .unwrap();
    assert_eq!(replayed.status(), 403);
    assert!(replayed.text().await.unwrap().contains("sent already"));
    // The same token spelled another way is the same token: refused too.
    for respelled in [format!("0{good}"), format!("00{good}"), format!("+{good}")] {
        let again = post(form(&respelled, "18", "maintenance"), vec![])
            .await
            .unwrap();
        assert_eq!(again.status(), 403, "{respelled}");
    }
    let lacking = post(form(&token(&client, &base).await, "18", ""), vec![])
        .await
        .unwrap();
    assert_eq!(lacking.status(), 400);
    assert!(lacking.text().await.unwrap().contains("lacks"));
    let long = post(
        form(&token(&client, &base).await, "18", &"x".repeat(501)),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(long.status(), 400);
    let hostile = post(
        form(
            &token(&client, &base).await,
            "<script>alert(1)</script>",
            "x",
        ),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(hostile.status(), 400);
    let said = hostile.text().await.unwrap();
    assert!(
        !said.contains("<script>") && said.contains("&lt;script&gt;"),
        "{said}"
    );
    let tokenless = post(form("", "18", "x"), vec![]).await.unwrap();
    assert_eq!(tokenless.status(), 403);
    // The page with its forms, and an action's answer, are valid HTML.
    let signed_in = signed_in_page(&client, &base, USER.0, USER.1).await;
    assert!(signed_in.contains("<form"), "a signed-in page has forms");
    testkit::html::validate(&signed_in, testkit::html::Kind::Page, "the page with forms");
    let answer = post(form(&token(&client, &base).await, "19", ""), vec![])
        .await
        .unwrap();
    testkit::html::validate(
        &answer.text().await.unwrap(),
        testkit::html::Kind::Page,
        "an action's answer",
    );
    let get = client
        .get(format!("{base}/actions/silence"))
        .basic_auth(USER.0, Some(USER.1))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let anonymous = client
        .post(format!("{base}/actions/silence"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let page = browser("page", &base, "").await;
    assert_eq!(
        page["silences"].as_array().unwrap().len(),
        1,
        "only the good form silenced: {page}"
    );
    daemon.stop().await;
}
