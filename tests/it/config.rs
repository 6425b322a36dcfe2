//! Bad configurations: each refused naming the key (in-process, a table), and through the
//! real binary with exit status 2 and one line on stderr.

use std::path::Path;

use sdm_watch::config::Config;
use testkit::cli::{sdm_watch, stderr, stdout};

const VALID: &str = r#"
[api]
token = "tok-abcdef-123456"
[state]
path = "/tmp/sdm-watch-test/state.db"
"#;

/// (what is wrong, the config, the key the error must name).
pub const BAD: &[(&str, &str, &str)] = &[
    (
        "a typo in a key",
        "[api]\ntoken = \"t\"\ntokn = \"t\"",
        "api.tokn",
    ),
    (
        "an unknown section",
        "[api]\ntoken = \"t\"\n[polll]\ninterval = \"1m\"",
        "polll",
    ),
    ("no token", "[api]\ntimeout = \"10s\"", "api.token"),
    (
        "token twice",
        "[api]\ntoken = \"t\"\ntoken_file = \"/etc/hostname\"",
        "api.token",
    ),
    (
        "a token file that is missing",
        "[api]\ntoken_file = \"/nonexistent/sdm-token\"",
        "api.token_file",
    ),
    (
        "a base URL that is not http",
        "[api]\ntoken = \"t\"\nbase_url = \"ftp://sdm.example\"",
        "api.base_url",
    ),
    (
        "page size zero",
        "[api]\ntoken = \"t\"\npage_size = 0",
        "api.page_size",
    ),
    (
        "a rate above fair use",
        "[api]\ntoken = \"t\"\nmax_requests_per_second = 50",
        "api.max_requests_per_second",
    ),
    (
        "a duration that is not one",
        "[api]\ntoken = \"t\"\n[poll]\ninterval = \"soon\"",
        "poll.interval",
    ),
    (
        "a misspelt status",
        "[api]\ntoken = \"t\"\n[poll]\nnotify_on = [\"errror\"]",
        "poll.notify_on",
    ),
    (
        "a shrinking multiplier",
        "[api]\ntoken = \"t\"\n[retry]\nmultiplier = 0.5",
        "retry.multiplier",
    ),
    (
        "no delivery at a time",
        "[api]\ntoken = \"t\"\n[delivery]\nconcurrency = 0",
        "delivery.concurrency",
    ),
    (
        "a listen address that is not one",
        "[api]\ntoken = \"t\"\n[http]\nlisten = \"everywhere\"",
        "http.listen",
    ),
    (
        "a log format that does not exist",
        "[api]\ntoken = \"t\"\n[log]\nformat = \"xml\"",
        "log.format",
    ),
    (
        "a webhook URL that is not a URL",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"hooks\"",
        "webhook[0].url",
    ),
    (
        "a webhook secret not in whsec_ form",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nsecret = \"abc\"",
        "webhook[0].secret",
    ),
    (
        "a webhook event that is never alerted",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nevents = [\"running\"]",
        "webhook[0].events",
    ),
    (
        "two channels with one name",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/y\"",
        "webhook[1].name",
    ),
    (
        "an unknown TLS mode",
        "[api]\ntoken = \"t\"\n[smtp]\nhost = \"mail\"\ntls = \"ssl\"\nfrom = \"a@b.example\"",
        "smtp.tls",
    ),
    (
        "a sender that is not an address",
        "[api]\ntoken = \"t\"\n[smtp]\nhost = \"mail\"\nfrom = \"sdm-watch\"",
        "smtp.from",
    ),
    (
        "a recipient that is not an address",
        "[api]\ntoken = \"t\"\n[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\n[[email]]\nname = \"oncall\"\nto = [\"oncall\"]",
        "email[0].to",
    ),
    (
        "e-mail without [smtp]",
        "[api]\ntoken = \"t\"\n[[email]]\nname = \"oncall\"\nto = [\"a@b.example\"]",
        "email[0].name",
    ),
    (
        "a user without a password",
        "[api]\ntoken = \"t\"\n[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\nusername = \"u\"",
        "smtp.password",
    ),
    (
        "output format zero",
        "[api]\ntoken = \"t\"\n[output]\nformat_id = 0\ndir = \"/tmp/out\"",
        "output.format_id",
    ),
    (
        "a fast cadence slower than the slow one",
        "[api]\ntoken = \"t\"\n[poll]\ninterval = \"30s\"\nactive_interval = \"1m\"",
        "poll.active_interval",
    ),
    (
        "a reminder period that is not a duration",
        "[api]\ntoken = \"t\"\n[poll]\nremind_pending_every = \"-5s\"",
        "poll.remind_pending_every",
    ),
    (
        "a reminder event while reminders are off",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nevents = [\"pending_reminder\"]",
        "webhook[0].events",
    ),
    (
        "digests of no alert",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\ngroup_wait = \"10s\"\ngroup_max = 0",
        "webhook[0].group_max",
    ),
    (
        "a digest window that is not a duration",
        "[api]\ntoken = \"t\"\n[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\n[[email]]\nname = \"oncall\"\nto = [\"a@b.example\"]\ngroup_wait = \"later\"",
        "email[0].group_wait",
    ),
    (
        "a webhook format that does not exist",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"telegram\"",
        "webhook[0].format",
    ),
    (
        "a template format without a template",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"template\"",
        "webhook[0].body_template",
    ),
    (
        "a body template on a native format",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"slack\"\nbody_template = \"{{ job.name }}\"",
        "webhook[0].body_template",
    ),
    (
        "a template with a syntax error",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"template\"\nbody_template = \"{\\n{% if %}\\n}\"",
        "webhook[0].body_template",
    ),
    (
        "a template with an unknown filter",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"template\"\nbody_template = \"{{ job.name | shout }}\"",
        "webhook[0].body_template",
    ),
    (
        "a template with an unknown variable",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"template\"\ncontent_type = \"text/plain\"\nbody_template = \"{{ jobb.name }}\"",
        "webhook[0].body_template",
    ),
    (
        "a JSON template that renders invalid JSON",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"template\"\nbody_template = \"{\\\"text\\\": \\\"{{ job.name }}\\\"}\"",
        "webhook[0].body_template",
    ),
    (
        "a template for single alerts on a channel that sends digests",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"template\"\ngroup_wait = \"10s\"\nbody_template = \"{\\\"text\\\": {{ job.name }}}\"",
        "webhook[0].body_template",
    ),
    (
        "a content type on a native format",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"discord\"\ncontent_type = \"text/plain\"",
        "webhook[0].content_type",
    ),
    (
        "a content type that is not one",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nformat = \"template\"\ncontent_type = \"json\"\nbody_template = \"x\"",
        "webhook[0].content_type",
    ),
    (
        "an e-mail subject template with an unknown variable",
        "[api]\ntoken = \"t\"\n[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\n[[email]]\nname = \"oncall\"\nto = [\"a@b.example\"]\nsubject_template = \"{{ jbo.name }}\"",
        "email[0].subject_template",
    ),
    (
        "an e-mail body template with a syntax error",
        "[api]\ntoken = \"t\"\n[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\n[[email]]\nname = \"oncall\"\nto = [\"a@b.example\"]\nbody_template = \"{% for %}\"",
        "email[0].body_template",
    ),
    (
        "a job link with an unknown placeholder",
        "[api]\ntoken = \"t\"\n[links]\njob = \"https://app.example/jobs/{job}\"",
        "links.job",
    ),
    (
        "a job link that is not a URL",
        "[api]\ntoken = \"t\"\n[links]\njob = \"app.example/jobs/{id}\"",
        "links.job",
    ),
    (
        "both a SQLite path and a PostgreSQL URL",
        "[api]\ntoken = \"t\"\n[state]\npath = \"/tmp/s.db\"\nurl = \"postgres://u@db/x\"",
        "state.url",
    ),
    (
        "a state URL that is not PostgreSQL",
        "[api]\ntoken = \"t\"\n[state]\nurl = \"mysql://u@db/x\"",
        "state.url",
    ),
    (
        "a password in the state URL",
        "[api]\ntoken = \"t\"\n[state]\nurl = \"postgres://u:hunter2@db/x\"",
        "state.url",
    ),
    (
        "an sslmode that does not exist",
        "[api]\ntoken = \"t\"\n[state]\nurl = \"postgres://u@db/x?sslmode=maybe\"",
        "state.url",
    ),
    (
        "a database password for SQLite",
        "[api]\ntoken = \"t\"\n[state]\npassword = \"p\"",
        "state.password",
    ),
    (
        "a database password twice",
        "[api]\ntoken = \"t\"\n[state]\nurl = \"postgres://u@db/x\"\npassword = \"p\"\npassword_file = \"/etc/hostname\"",
        "state.password",
    ),
    (
        "an unknown time zone",
        "[api]\ntoken = \"t\"\n[[time_window]]\nname = \"office\"\nweekdays = [\"mon-fri\"]\ntimezone = \"Europe/Pariss\"\ntimes = [\"08:00-18:00\"]\n",
        "time_window[0].timezone",
    ),
    (
        "a malformed weekday",
        "[api]\ntoken = \"t\"\n[[time_window]]\nname = \"w\"\nweekdays = [\"mon-fryday\"]\ntimes = [\"08:00-18:00\"]",
        "time_window[0].weekdays",
    ),
    (
        "a malformed time",
        "[api]\ntoken = \"t\"\n[[time_window]]\nname = \"w\"\nweekdays = [\"mon\"]\ntimes = [\"8h-18h\"]",
        "time_window[0].times",
    ),
    (
        "a window that never opens",
        "[api]\ntoken = \"t\"\n[[time_window]]\nname = \"w\"\nweekdays = []\ntimes = [\"08:00-18:00\"]",
        "time_window[0].weekdays",
    ),
    (
        "a window of no time",
        "[api]\ntoken = \"t\"\n[[time_window]]\nname = \"w\"\nweekdays = [\"mon\"]\ntimes = [\"09:00-09:00\"]",
        "time_window[0].times",
    ),
    (
        "two windows of one name",
        "[api]\ntoken = \"t\"\n[[time_window]]\nname = \"office\"\nweekdays = [\"mon-fri\"]\ntimes = [\"08:00-18:00\"]\n[[time_window]]\nname = \"office\"\nweekdays = [\"mon-fri\"]\ntimes = [\"08:00-18:00\"]\n",
        "time_window[1].name",
    ),
    (
        "a channel active during an unknown window",
        "[api]\ntoken = \"t\"\n[[time_window]]\nname = \"office\"\nweekdays = [\"mon-fri\"]\ntimes = [\"08:00-18:00\"]\n[[webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:1/\"\nactive_during = [\"ofice\"]",
        "webhook[0].active_during",
    ),
    (
        "a channel muted during an unknown window",
        "[api]\ntoken = \"t\"\n[smtp]\nhost = \"127.0.0.1\"\nfrom = \"a@example.com\"\n[[email]]\nname = \"m\"\nto = [\"b@example.com\"]\nmuted_during = [\"night\"]",
        "email[0].muted_during",
    ),
    (
        "a report naming an unknown channel",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:1/\"\n[[report]]\nname = \"weekly\"\nschedule = \"mon 08:00\"\nchannels = [\"oncall\"]",
        "report[0].channels",
    ),
    (
        "a report on a malformed schedule",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:1/\"\n[[report]]\nname = \"weekly\"\nschedule = \"mondays at 8\"\nchannels = [\"ops\"]",
        "report[0].schedule",
    ),
    (
        "a report in an unknown time zone",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:1/\"\n[[report]]\nname = \"weekly\"\nschedule = \"mon 08:00\"\ntimezone = \"Europe/Lutece\"\nchannels = [\"ops\"]",
        "report[0].timezone",
    ),
    (
        "a report to a template channel",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"t\"\nurl = \"http://127.0.0.1:1/\"\nformat = \"template\"\nbody_template = \"{{ event }}\"\n[[report]]\nname = \"weekly\"\nschedule = \"mon 08:00\"\nchannels = [\"t\"]",
        "report[0].channels",
    ),
    (
        "a report to no channel",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:1/\"\n[[report]]\nname = \"weekly\"\nschedule = \"daily 07:30\"\nchannels = []",
        "report[0].channels",
    ),
    (
        "a channel asking for reports as an event",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:1/\"\nevents = [\"report\"]\n",
        "webhook[0].events",
    ),
    (
        "a users file that does not exist",
        "[api]\ntoken = \"t\"\n[http]\nusers_file = \"/nonexistent/users\"",
        "http.users_file",
    ),
    (
        "metrics_auth without users",
        "[api]\ntoken = \"t\"\n[http]\nmetrics_auth = true",
        "http.metrics_auth",
    ),
    (
        "jobs kept for less than a day",
        "[api]\ntoken = \"t\"\n[state]\nkeep = \"12h\"",
        "state.keep",
    ),
    (
        "a running-long factor under 1",
        "[api]\ntoken = \"t\"\n[poll]\nrunning_longer_than_usual = 0.5",
        "poll.running_longer_than_usual",
    ),
    (
        "a running-long factor that is not a number",
        "[api]\ntoken = \"t\"\n[poll]\nrunning_longer_than_usual = nan",
        "poll.running_longer_than_usual",
    ),
    (
        "a lease shorter than an ordinary pause",
        "[api]\ntoken = \"t\"\n[state]\nurl = \"postgres://u@db/x\"\nlease = \"1s\"",
        "state.lease",
    ),
    (
        "a watchdog quicker than two cycles",
        "[api]\ntoken = \"t\"\n[poll]\ninterval = \"60s\"\n[watchdog]\nalert_after = \"90s\"",
        "watchdog.alert_after",
    ),
    (
        "a heartbeat URL that is not http(s)",
        "[api]\ntoken = \"t\"\n[heartbeat]\nurl = \"ftp://hc.example/x\"",
        "heartbeat.url",
    ),
    (
        "a heartbeat fail_url without url",
        "[api]\ntoken = \"t\"\n[heartbeat]\nfail_url = \"https://hc.example/x/fail\"",
        "heartbeat.fail_url",
    ),
    (
        "a heartbeat every without url",
        "[api]\ntoken = \"t\"\n[heartbeat]\nevery = \"60s\"",
        "heartbeat.every",
    ),
    (
        "a duration past a century",
        "[api]\ntoken = \"t\"\n[poll]\nlookback = \"20000y\"",
        "poll.lookback",
    ),
    (
        "the watcher event with the watchdog off",
        "[api]\ntoken = \"t\"\n[watchdog]\nalert_after = \"0s\"\n[[webhook]]\nname = \"w\"\nurl = \"https://h.example/\"\nevents = [\"watcher\"]",
        "webhook[0].events",
    ),
    (
        "two organisations with one name",
        "[[organisation]]\nname = \"acme\"\ntoken = \"a\"\n[[organisation]]\nname = \"acme\"\ntoken = \"b\"",
        "organisation[1].name",
    ),
    (
        "an organisation name with capitals",
        "[[organisation]]\nname = \"Acme\"\ntoken = \"a\"",
        "organisation[0].name",
    ),
    (
        "an empty organisation name",
        "[[organisation]]\nname = \"\"\ntoken = \"a\"",
        "organisation[0].name",
    ),
    (
        "an organisation without a token",
        "[[organisation]]\nname = \"acme\"\ntoken = \"a\"\n[[organisation]]\nname = \"globex\"",
        "organisation[1].token",
    ),
    (
        "an [api] token two organisations would share",
        "[api]\ntoken = \"t\"\n[[organisation]]\nname = \"acme\"\n[[organisation]]\nname = \"globex\"",
        "api.token",
    ),
    (
        "an [api] token no organisation uses",
        "[api]\ntoken = \"t\"\n[[organisation]]\nname = \"acme\"\ntoken = \"a\"",
        "api.token",
    ),
    (
        "an organisation's fair-use cap above the API's",
        "[[organisation]]\nname = \"acme\"\ntoken = \"a\"\nmax_requests_per_second = 50",
        "organisation[0].max_requests_per_second",
    ),
    (
        "a channel naming an unknown organisation",
        "[[organisation]]\nname = \"acme\"\ntoken = \"a\"\n[[webhook]]\nname = \"w\"\nurl = \"https://h.example/\"\norganisations = [\"globex\"]",
        "webhook[0].organisations",
    ),
    (
        "an unknown key in an organisation",
        "[[organisation]]\nname = \"acme\"\ntoken = \"a\"\npage_size = 10",
        "page_size",
    ),
    (
        "done in the events of an alertmanager channel",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurl = \"http://am.example:9093\"\nevents = [\"error\", \"done\"]",
        "webhook[0].events",
    ),
    (
        "done in the events of a pagerduty channel",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"pagerduty\"\nrouting_key = \"0123456789abcdef0123456789abcdef\"\nevents = [\"done\"]",
        "webhook[0].events",
    ),
    (
        "a pagerduty channel without a routing_key",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"pagerduty\"\n",
        "webhook[0].routing_key",
    ),
    (
        "a routing_key on another format",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nurl = \"https://h.example/x\"\nrouting_key = \"k\"",
        "webhook[0].routing_key",
    ),
    (
        "an alertmanager resend under 10s",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurl = \"http://am.example:9093\"\nresend = \"5s\"",
        "webhook[0].resend",
    ),
    (
        "an alertmanager URL that is not http(s)",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurl = \"ftp://am.example/\"",
        "webhook[0].url",
    ),
    (
        "an alertmanager cluster member that is not http(s)",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurls = [\"http://a.example:9093\", \"am2:9093\"]",
        "webhook[0].urls",
    ),
    (
        "an alertmanager without a URL",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\n",
        "webhook[0].url",
    ),
    (
        "url and urls together",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurl = \"http://a.example/\"\nurls = [\"http://b.example/\"]",
        "webhook[0].urls",
    ),
    (
        "urls on a standard webhook",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nurls = [\"http://b.example/\"]",
        "webhook[0].urls",
    ),
    (
        "send_resolved = false on an alertmanager channel",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurl = \"http://a.example/\"\nsend_resolved = false",
        "webhook[0].send_resolved",
    ),
    (
        "digests on a pagerduty channel",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"pagerduty\"\nrouting_key = \"k\"\ngroup_wait = \"1m\"",
        "webhook[0].group_wait",
    ),
    (
        "a username without a password",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nurl = \"https://h.example/x\"\nusername = \"u\"",
        "webhook[0].password",
    ),
    (
        "basic auth and a bearer token together",
        "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurl = \"http://a.example/\"\nusername = \"u\"\npassword = \"p\"\nbearer_token = \"t\"",
        "webhook[0].bearer_token",
    ),
    (
        "a status page link that is not a URL",
        "[api]\ntoken = \"t\"\n[links]\nstatus_page = \"status\"",
        "links.status_page",
    ),
    (
        "TOML that does not parse",
        "[api\ntoken = \"t\"",
        "line 1, column 5",
    ),
];

#[test]
fn every_bad_config_is_refused_naming_the_key() {
    assert!(BAD.len() >= 20);
    for (what, text, key) in BAD {
        let error = Config::from_toml(text, Path::new("bad.toml"))
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        let message = error.to_string();
        assert!(
            error.key() == Some(*key) || message.contains(key),
            "{what}: {key} not named in {message:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_config_exits_2_with_one_line_naming_the_key() {
    // A few of the table through the real binary: the exit status and the message's shape.
    for (what, text, key) in [BAD[0], BAD[6], BAD[14], BAD[BAD.len() - 1]] {
        let output = sdm_watch(text, &["check"], &[]).await;
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{what}: {message}");
        assert!(
            message.contains(key),
            "{what}: {key} not named in {message:?}"
        );
        assert!(
            !message.contains("panicked") && !message.contains("RUST_BACKTRACE"),
            "{what}: {message}"
        );
        if !text.starts_with("[api\n") {
            // A TOML syntax error keeps the parser's pointer to the spot, over a few lines.
            assert_eq!(
                message.trim_end().lines().count(),
                1,
                "{what}: one line, got {message:?}"
            );
        }
        assert!(stdout(&output).is_empty(), "{what}: nothing on stdout");
    }
}

#[tokio::test]
async fn environment_variables_override_the_file_and_are_named_when_wrong() {
    let output = sdm_watch(VALID, &["check"], &[("SDM_WATCH_API__PAGE_SIZE", "0")]).await;
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("api.page_size"), "{message}");
    assert!(
        message.contains("environment variable SDM_WATCH_API__PAGE_SIZE"),
        "{message}"
    );

    let output = sdm_watch(
        VALID,
        &["check"],
        &[
            ("SDM_WATCH_API__PAGE_SIZE", "40"),
            ("SDM_WATCH_LOG", "debug"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("page_size = 40"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn check_prints_the_effective_config_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook-secret");
    std::fs::write(&secret_file, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    let text = format!(
        r#"{VALID}
[[webhook]]
name = "ops"
url = "https://hooks.example.com/sdm"
secret_file = "{}"

[[webhook]]
name = "slack"
format = "slack"
url = "https://hooks.slack.com/services/T000/B000/slack-path-key-value"
headers = {{ "X-Api-Key" = "header-value-key" }}

[[webhook]]
name = "basic"
url = "https://relay-user:relay-password-value@relay.example:8443/in?key=query-key-value"

[smtp]
host = "smtp.example.com"
username = "mailer"
password = "smtp-password-value"
from = "sdm-watch <sdm-watch@example.com>"

[[email]]
name = "oncall"
to = ["ops@example.com"]
events = ["error"]

[[webhook]]
name = "am"
format = "alertmanager"
urls = ["http://am-0.example:9093", "http://am-1.example:9093"]
bearer_token = "am-bearer-token-value"

[[webhook]]
name = "pd"
format = "pagerduty"
routing_key = "pd-routing-key-value-0123456789ab"
"#,
        secret_file.display()
    );
    let output = sdm_watch(&text, &["check"], &[]).await;
    let printed = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for secret in [
        "tok-abcdef-123456",
        "smtp-password-value",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "am-bearer-token-value",
        "pd-routing-key-value",
        "slack-path-key-value",
        "header-value-key",
        "relay-user",
        "relay-password-value",
        "query-key-value",
    ] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    for expected in [
        "token = \"[redacted]\"",
        "password = \"[redacted]\"",
        "secret = \"[redacted]\"",
        "base_url = \"https://sdm.akeneo.cloud/api/v1/\"",
        "interval = \"1m\"",
        "lookback = \"7days\"",
        "notify_on = [\n",
        "port = 587",
        "events = [\"error\"]",
        "listen = \"127.0.0.1:10187\"",
        // The incident formats' defaults: what they take, always resolving, resending.
        "auth = \"bearer token\"",
        "resend = \"1m\"",
        "routing_key = \"[redacted]\"",
        "url = \"https://events.pagerduty.com/[redacted]\"",
        "\"http://am-1.example:9093/\"",
        // Webhook URLs: scheme and host, the path (a chat service's key) redacted.
        "url = \"https://hooks.slack.com/[redacted]\"",
        "url = \"https://relay.example:8443/[redacted]\"",
        "X-Api-Key = \"[redacted]\"",
    ] {
        assert!(
            printed.contains(expected),
            "{expected:?} missing from:\n{printed}"
        );
    }
}

#[tokio::test]
async fn a_missing_config_file_is_a_clear_error() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sdm-watch"))
        .args(["--config", "/nonexistent/sdm-watch.toml", "check"])
        .env_remove("SDM_WATCH_CONFIG")
        .output()
        .await
        .unwrap();
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        message.contains("/nonexistent/sdm-watch.toml") && message.contains("not found"),
        "{message}"
    );
}

#[tokio::test]
async fn the_example_config_documents_real_keys() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/sdm-watch.example.toml"
    ))
    .unwrap();
    let output = sdm_watch(&text, &["check"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("name = \"oncall\""));
}

#[tokio::test]
async fn secret_files_may_live_in_the_systemd_credentials_directory() {
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(
        credentials.path().join("sdm-token"),
        "tok-from-credentials\n",
    )
    .unwrap();
    let text = "[api]\ntoken_file = \"$CREDENTIALS_DIRECTORY/sdm-token\"\n";
    let directory = credentials.path().to_str().unwrap();
    let output = sdm_watch(text, &["check"], &[("CREDENTIALS_DIRECTORY", directory)]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stdout(&output).contains("tok-from-credentials"));

    // Without it, `check` notes the token it cannot read; `once`, which calls the API,
    // refuses with the key named.
    let unset = [("CREDENTIALS_DIRECTORY", "")];
    let output = sdm_watch(text, &["check"], &unset).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("CREDENTIALS_DIRECTORY, which is not set"));
    let output = sdm_watch(text, &["once"], &unset).await;
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("api.token_file") && message.contains("CREDENTIALS_DIRECTORY"),
        "{message}"
    );
}

#[test]
fn debug_output_of_the_whole_config_holds_no_secret() {
    // Panic and error messages print values with Debug; none may carry a secret.
    let config = testkit::config::config(
        "[api]\ntoken = \"tok-debug-secret\"\n\
         [[webhook]]\nname = \"ops\"\nurl = \"https://h.example/x\"\nsecret = \"whsec_c2VjcmV0LWRlYnVnLWtleQ==\"\n\
         [smtp]\nhost = \"mail\"\nusername = \"u\"\npassword = \"smtp-debug-secret\"\nfrom = \"a@b.example\"\n",
    );
    let debug = format!("{config:?} {config:#?}");
    for secret in [
        "tok-debug-secret",
        "smtp-debug-secret",
        "c2VjcmV0LWRlYnVnLWtleQ",
        "secret-debug-key",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("[redacted]"));
}

/// The replicas' config and compose file in `deploy/` agree and load.
#[test]
fn the_replicas_deployment_files_hold_together() {
    let root = env!("CARGO_MANIFEST_DIR");
    let config = std::fs::read_to_string(format!("{root}/deploy/config.replicas.toml")).unwrap();
    let compose = std::fs::read_to_string(format!("{root}/deploy/compose.replicas.yaml")).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    for name in ["sdm-token", "db-password", "webhook-secret"] {
        assert!(
            config.contains(&format!("/run/secrets/{name}"))
                && compose.contains(&format!("{name}:")),
            "{name} is read by the config and provided by the compose file"
        );
        let value = if name == "webhook-secret" {
            testkit::SECRET
        } else {
            "s3cret-value"
        };
        std::fs::write(secrets.path().join(name), value).unwrap();
    }
    assert!(compose.contains("./config.replicas.toml:/etc/sdm-watch/config.toml:ro"));
    let text = config.replace("/run/secrets/", &format!("{}/", secrets.path().display()));
    let loaded = Config::from_toml(&text, Path::new("config.replicas.toml")).unwrap();
    assert_eq!(
        loaded.state.url.as_deref(),
        Some("postgres://sdmwatch@postgres:5432/sdmwatch")
    );
    assert!(loaded.state.password.is_some());
    assert_eq!(loaded.state.lease, std::time::Duration::from_secs(15));
}

/// docs/replicas.md's `[state]` example loads, its password file standing in.
#[test]
fn the_docs_replicas_example_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/replicas.md")).unwrap();
    let start = readme.find("## Running several replicas").unwrap();
    let block = readme[start..]
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("db-password");
    std::fs::write(&password, "pw\n").unwrap();
    assert!(block.contains("/etc/sdm-watch/db-password"), "{block}");
    let text = format!(
        "[api]\ntoken = \"t\"\n{}",
        block.replace(
            "/etc/sdm-watch/db-password",
            &password.display().to_string()
        )
    );
    let config = Config::from_toml(&text, Path::new("docs/replicas.md")).unwrap();
    assert!(
        config
            .state
            .url
            .as_deref()
            .unwrap()
            .contains("sslmode=verify-full")
    );
    assert!(config.state.password.is_some());
}

#[test]
fn organisations_take_what_they_do_not_set_from_api_and_poll() {
    let config = Config::from_toml(
        r#"
[api]
base_url = "https://eu.sdm.example/api/v1/"
token = "shared-token-for-one"
max_requests_per_second = 3
page_size = 50
[poll]
projects = [5]
[[organisation]]
name = "acme"
token = "acme-token"
projects = [17, 18]
[[organisation]]
name = "globex-2"
base_url = "https://us.sdm.example/api/v1"
"#,
        Path::new("orgs.toml"),
    )
    .unwrap();
    let [acme, globex] = config.organisations.as_slice() else {
        panic!("two organisations: {:?}", config.organisations);
    };
    assert_eq!(acme.name, "acme");
    assert_eq!(acme.api.token.expose(), "acme-token");
    assert_eq!(acme.api.base_url.as_str(), "https://eu.sdm.example/api/v1/");
    assert_eq!(acme.projects, [17, 18]);
    assert_eq!(globex.api.token.expose(), "shared-token-for-one");
    assert_eq!(
        globex.api.base_url.as_str(),
        "https://us.sdm.example/api/v1/"
    );
    assert_eq!(globex.projects, [5], "poll.projects is the default");
    for org in [acme, globex] {
        assert_eq!(org.api.max_requests_per_second, 3.0);
        assert_eq!(org.api.page_size, 50);
    }
    assert!(config.names_organisations());
    let shown = config.to_redacted_toml();
    assert!(shown.contains("[[organisation]]"), "{shown}");
    assert!(
        !shown.contains("acme-token") && !shown.contains("shared-token-for-one"),
        "{shown}"
    );

    let single = Config::from_toml("[api]\ntoken = \"t\"", Path::new("one.toml")).unwrap();
    assert_eq!(single.organisations.len(), 1);
    assert_eq!(single.organisations[0].name, "default");
    assert!(
        !single.names_organisations(),
        "a config without tables reads as before"
    );
    assert!(single.to_redacted_toml().contains("[api]"));
}
