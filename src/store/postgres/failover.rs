//! Which server to use when `state.url` names several (a primary and its standbys): every
//! host is tried at once, and the connection kept is the writable server on the newest
//! timeline. A standby's timeline moves on when it is promoted, so a former primary that
//! comes back writable (split brain) is on an older one: it is never chosen while the new
//! primary answers, and never at all by a replica that has used the new primary (the
//! highest timeline seen is kept in the settings, shared by every connection they make).
//!
//! Errors that say the server is gone or has turned read-only (SQLSTATE class 08, 57P01
//! to 57P03, 25006) drop the connection, so that the next statement connects again and
//! lands on whichever server is the primary then.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_postgres::Client;
use tokio_postgres::config::{Config, Host};

use super::{PgSettings, describe};
use crate::store::StoreError;

/// After the first server that can be used answered, the others get this long.
const STRAGGLERS: Duration = Duration::from_secs(2);

/// The highest timeline this process has used through one [`PgSettings`].
#[derive(Clone, Debug, Default)]
pub struct Newest(Arc<AtomicU32>);

impl Newest {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    fn raise(&self, timeline: u32) {
        self.0.fetch_max(timeline, Ordering::Relaxed);
    }
}

/// Whether an error with this SQLSTATE means the connection is of no further use: the
/// server went away, is shutting down, or no longer takes writes (a primary turned
/// standby). `None` (no SQLSTATE: the socket broke) counts as gone.
pub fn breaks_connection(code: Option<&str>) -> bool {
    match code {
        None => true,
        Some(code) => {
            code.starts_with("08") || matches!(code, "25006" | "57P01" | "57P02" | "57P03")
        }
    }
}

/// One host of `config` as a configuration of its own, with everything else kept.
fn single(config: &Config, at: usize) -> Config {
    let mut one = Config::new();
    if let Some(user) = config.get_user() {
        one.user(user);
    }
    if let Some(password) = config.get_password() {
        one.password(password);
    }
    if let Some(dbname) = config.get_dbname() {
        one.dbname(dbname);
    }
    if let Some(options) = config.get_options() {
        one.options(options);
    }
    if let Some(name) = config.get_application_name() {
        one.application_name(name);
    }
    match config.get_hosts().get(at) {
        Some(Host::Tcp(host)) => {
            one.host(host);
        }
        Some(Host::Unix(path)) => {
            one.host_path(path);
        }
        None => {}
    }
    if let Some(addr) = config.get_hostaddrs().get(at) {
        one.hostaddr(*addr);
    }
    let ports = config.get_ports();
    if let Some(port) = ports.get(at).or(ports.first()) {
        one.port(*port);
    }
    if let Some(timeout) = config.get_connect_timeout() {
        one.connect_timeout(*timeout);
    }
    if let Some(timeout) = config.get_tcp_user_timeout() {
        one.tcp_user_timeout(*timeout);
    }
    one.keepalives(config.get_keepalives())
        .keepalives_idle(config.get_keepalives_idle());
    if let Some(interval) = config.get_keepalives_interval() {
        one.keepalives_interval(interval);
    }
    if let Some(retries) = config.get_keepalives_retries() {
        one.keepalives_retries(retries);
    }
    one.ssl_mode(config.get_ssl_mode())
        .ssl_negotiation(config.get_ssl_negotiation())
        .channel_binding(config.get_channel_binding())
        .target_session_attrs(config.get_target_session_attrs());
    one
}

/// `host:port` of host `at`, for messages.
fn label(config: &Config, at: usize) -> String {
    let host = match config.get_hosts().get(at) {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => config
            .get_hostaddrs()
            .get(at)
            .map_or_else(|| "?".to_owned(), ToString::to_string),
    };
    let ports = config.get_ports();
    let port = ports.get(at).or(ports.first()).copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// The timeline of a writable server (the first 8 hex digits of its WAL file name); `None`
/// on a standby, or where the server will not say.
async fn timeline(client: &Client) -> Option<u32> {
    let row = client
        .query_one(
            "SELECT CASE WHEN pg_is_in_recovery() THEN NULL
                    ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END",
            &[],
        )
        .await
        .ok()?;
    let hex: Option<String> = row.try_get(0).ok()?;
    u32::from_str_radix(&hex?, 16).ok()
}

/// A server that answered: its position in the URL, the connection, its timeline.
struct Answer {
    at: usize,
    client: Client,
    timeline: Option<u32>,
}

/// Connects to every host of `settings` at once and keeps the writable server on the
/// newest timeline (the first in the URL among equals), refusing one behind a timeline
/// already used.
pub async fn connect(settings: &PgSettings) -> Result<Client, StoreError> {
    let config = &settings.config;
    let hosts = config.get_hosts().len().max(config.get_hostaddrs().len());
    let mut tries = JoinSet::new();
    for at in 0..hosts {
        let one = if hosts == 1 {
            config.clone()
        } else {
            single(config, at)
        };
        let settings = settings.clone();
        tries.spawn(async move {
            let client = super::connect_one(&one, &settings)
                .await
                .map_err(|error| (at, error))?;
            let timeline = timeline(&client).await;
            Ok::<_, (usize, tokio_postgres::Error)>(Answer {
                at,
                client,
                timeline,
            })
        });
    }
    let mut answers: Vec<Answer> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut last_code = None;
    let mut wait_until = None;
    loop {
        let next = match wait_until {
            Some(until) => match tokio::time::timeout_at(until, tries.join_next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => tries.join_next().await,
        };
        let Some(joined) = next else { break };
        match joined {
            Ok(Ok(answer)) => {
                wait_until.get_or_insert(tokio::time::Instant::now() + STRAGGLERS);
                answers.push(answer);
            }
            Ok(Err((at, error))) => {
                last_code = error.code().map(|code| code.code().to_owned());
                errors.push(match hosts {
                    1 => describe(&error),
                    _ => format!("{}: {}", label(config, at), describe(&error)),
                });
            }
            Err(join) => errors.push(join.to_string()),
        }
    }
    tries.abort_all();
    choose(settings, answers, errors, last_code)
}

fn choose(
    settings: &PgSettings,
    mut answers: Vec<Answer>,
    mut errors: Vec<String>,
    code: Option<String>,
) -> Result<Client, StoreError> {
    let config = &settings.config;
    let newest = settings.newest.get();
    // Writable servers first, the newest timeline first, then in the URL's order.
    answers.sort_by_key(|a| (std::cmp::Reverse(a.timeline), a.at));
    let at = answers
        .iter()
        .position(|a| a.timeline.is_none_or(|t| t >= newest));
    let kept_timeline = at.and_then(|at| answers[at].timeline);
    for (n, answer) in answers.iter().enumerate() {
        let Some(timeline) = answer.timeline.filter(|_| Some(n) != at) else {
            continue;
        };
        let ahead = kept_timeline.unwrap_or(0).max(newest);
        tracing::warn!(
            server = %label(config, answer.at),
            timeline,
            newest = ahead,
            "a second writable PostgreSQL server, on an older or the same timeline: a former \
             primary? sdm-watch does not use it; shut it down or rebuild it as a standby"
        );
        errors.push(format!(
            "{} is writable on timeline {timeline}, not after {ahead}",
            label(config, answer.at)
        ));
    }
    match at.map(|at| answers.swap_remove(at)) {
        Some(answer) => {
            if let Some(timeline) = answer.timeline {
                settings.newest.raise(timeline);
            }
            Ok(answer.client)
        }
        None if errors.len() == 1 => Err(StoreError::Postgres {
            message: errors.remove(0),
            code,
        }),
        None => Err(StoreError::Postgres {
            message: format!("no server can be used: {}", errors.join("; ")),
            code,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_keeps_its_port_and_the_rest_of_the_settings() {
        let config: Config =
            "host=a,b port=5432,5433 user=u dbname=d target_session_attrs=read-write"
                .parse()
                .unwrap();
        let b = single(&config, 1);
        assert_eq!(b.get_hosts(), &[Host::Tcp("b".into())]);
        assert_eq!(b.get_ports(), &[5433]);
        assert_eq!(b.get_user(), Some("u"));
        assert_eq!(b.get_dbname(), Some("d"));
        assert_eq!(
            b.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        assert_eq!(label(&config, 1), "b:5433");
        let one_port: Config = "host=a,b port=6000".parse().unwrap();
        assert_eq!(single(&one_port, 1).get_ports(), &[6000]);
    }

    #[test]
    fn gone_and_read_only_servers_break_the_connection_and_sql_errors_do_not() {
        for gone in [
            None,
            Some("08006"),
            Some("25006"),
            Some("57P01"),
            Some("57P03"),
        ] {
            assert!(breaks_connection(gone), "{gone:?}");
        }
        for kept in ["23505", "40001", "42P01", "57014"] {
            assert!(!breaks_connection(Some(kept)), "{kept}");
        }
    }

    #[test]
    fn several_hosts_ask_for_the_writable_one_unless_the_url_says() {
        use tokio_postgres::config::TargetSessionAttrs;
        let attrs = |url: &str| {
            let settings = PgSettings::parse(url, None).unwrap();
            settings.config.get_target_session_attrs()
        };
        assert_eq!(attrs("postgres://u@a,b/d"), TargetSessionAttrs::ReadWrite);
        assert_eq!(
            attrs("postgres://u@a:1,b:2/d?target_session_attrs=any"),
            TargetSessionAttrs::Any
        );
        assert_eq!(attrs("postgres://u@a/d"), TargetSessionAttrs::Any);
        let settings = PgSettings::parse("postgres://u@a,b/d", None).unwrap();
        assert_eq!(
            settings.config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(30))
        );
    }
}
