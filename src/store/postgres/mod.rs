//! PostgreSQL, for several replicas sharing one database: the connection (with TLS through
//! rustls), the schema with versioned migrations run once under a lock by whichever
//! replica comes first, [`PgDb`] carrying out the store's statements, and leadership as
//! a lease with a fencing token (`lease`).
//!
//! The client is `tokio-postgres`: maintained, async on the tokio runtime the daemon
//! already runs, pure Rust (no libpq, no OpenSSL). No pool: each replica holds one
//! connection for its store work (as SQLite's one writer), one for reads and one for its
//! lease, each reconnected when it breaks; a pool would add a dependency for nothing.
//! Everything lives in the schema `sdm_watch`, so the database can be shared.

mod db;
pub mod failover;
pub mod lease;
mod schema;
mod tls;

pub use db::PgDb;
pub use schema::{LATEST, migrate, version};

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;

use super::StoreError;

/// The schema (namespace) every table lives in.
pub const SCHEMA: &str = "sdm_watch";

/// Where and how to connect, parsed once from `state.url` and the password.
#[derive(Clone)]
pub struct PgSettings {
    config: tokio_postgres::Config,
    tls: Option<Arc<rustls::ClientConfig>>,
    shown: String,
    /// The highest timeline used through these settings (see `failover`).
    newest: failover::Newest,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Why `state.url` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("sslmode {0:?} is not one of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("cannot read sslrootcert {0}: {1}")]
    RootCert(String, String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("not a PostgreSQL URL: {0}")]
    NotAUrl(tokio_postgres::Error),
    #[error("the URL names no host")]
    NoHost,
}

impl PgSettings {
    /// Parses `url` (`postgres://user@host:port/db?sslmode=...`). `sslmode` is `disable`
    /// (the default: none), `prefer` and `require` (encrypted, the certificate not
    /// checked, as libpq does), `verify-ca` or `verify-full` (checked against
    /// `sslrootcert` if given, else the system's roots). `password` replaces one in the URL.
    pub fn parse(url: &str, password: Option<&str>) -> Result<PgSettings, UrlError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = "disable".to_owned();
        let mut root = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", value)) => mode = value.to_owned(),
                Some(("sslrootcert", value)) => root = Some(value.to_owned()),
                _ => kept.push(pair),
            }
        }
        let tls = match mode.as_str() {
            "disable" => None,
            "prefer" | "require" => Some(tls::unverified()),
            "verify-ca" | "verify-full" => Some(tls::verified(root.as_deref())?),
            other => {
                return Err(UrlError::SslMode(other.to_owned()));
            }
        };
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config = tokio_postgres::Config::from_str(&rebuilt).map_err(UrlError::NotAUrl)?;
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_hosts().is_empty() {
            return Err(UrlError::NoHost);
        }
        if tls.is_some() {
            config.ssl_mode(if mode == "prefer" {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
        }
        config.application_name("sdm-watch");
        config.connect_timeout(Duration::from_secs(10));
        // With a primary and its standbys, only the primary will do.
        if config.get_hosts().len() > 1 && !url.contains("target_session_attrs") {
            config.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
        }
        // A server that vanished (no reset: a host down, a network cut) is given up after
        // 30 s of unacknowledged data or silence, not after the kernel's 15 minutes.
        if !url.contains("tcp_user_timeout") {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        if !url.contains("keepalives_idle") {
            config.keepalives_idle(Duration::from_secs(15));
        }
        Ok(PgSettings {
            config,
            tls,
            shown: shown(url),
            newest: failover::Newest::default(),
        })
    }

    /// The URL without its password, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// `url` with any password in it replaced by `***`.
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(the PostgreSQL URL)".into();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = tail
        .split_once('?')
        .map_or(tail.to_owned(), |(path, query)| {
            let query: Vec<&str> = query
                .split('&')
                .filter(|p| !p.starts_with("password="))
                .collect();
            format!("{path}?{}", query.join("&"))
        });
    format!("{scheme}://{authority}{tail}")
}

/// Connects to the server to use (the primary, when the URL names several hosts: see
/// `failover`), driving the connection on a task of its own, with the search path on the
/// sdm-watch schema; the client fails once that connection is gone.
pub async fn connect(settings: &PgSettings) -> Result<Client, StoreError> {
    failover::connect(settings).await
}

/// Connects to the one server `config` names, with the TLS of `settings`.
async fn connect_one(
    config: &tokio_postgres::Config,
    settings: &PgSettings,
) -> Result<Client, tokio_postgres::Error> {
    let client = match &settings.tls {
        None => {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(drive(connection));
            client
        }
        Some(tls) => {
            let make = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
            let (client, connection) = config.connect(make).await?;
            tokio::spawn(drive(connection));
            client
        }
    };
    client
        .batch_execute(&format!("SET search_path TO {SCHEMA}"))
        .await?;
    Ok(client)
}

/// The channel a replica notifies when it queued alerts, so that every replica's worker
/// looks at the outbox at once.
pub const OUTBOX_CHANNEL: &str = "sdm_watch_outbox";

/// Listens on [`OUTBOX_CHANNEL`] until dropped, calling `wake` for each notification (and
/// once after each reconnection, in case one was missed while cut off).
pub async fn listen(settings: PgSettings, wake: impl Fn() + Send + 'static) {
    loop {
        match listen_once(&settings, &wake).await {
            Ok(()) => {}
            Err(error) => {
                tracing::debug!(error = %describe(&error), "outbox notifications interrupted; listening again in 1s");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(settings: &PgSettings, wake: &impl Fn()) -> Result<(), tokio_postgres::Error> {
    use tokio_postgres::AsyncMessage;
    async fn serve<S, T>(
        client_config: &tokio_postgres::Config,
        tls: T,
        wake: &impl Fn(),
    ) -> Result<(), tokio_postgres::Error>
    where
        T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket, Stream = S>,
        S: tokio_postgres::tls::TlsStream + Unpin,
    {
        let (client, mut connection) = client_config.connect(tls).await?;
        // One task drives the connection (its notifications) and the LISTEN together.
        let statement = format!("LISTEN {OUTBOX_CHANNEL}");
        let listen = client.batch_execute(&statement);
        tokio::pin!(listen);
        let mut listening = false;
        loop {
            tokio::select! {
                done = &mut listen, if !listening => {
                    done?;
                    listening = true;
                    wake();
                }
                message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                    Some(Ok(AsyncMessage::Notification(_))) => wake(),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error),
                    None => return Ok(()),
                },
            }
        }
    }
    match &settings.tls {
        None => serve(&settings.config, tokio_postgres::NoTls, wake).await,
        Some(tls) => {
            let make = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
            serve(&settings.config, make, wake).await
        }
    }
}

async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(error) = connection.await {
        tracing::debug!(error = %describe(&error), "PostgreSQL connection ended");
    }
}

/// The server's own words for a database error, else the client's.
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        StoreError::Postgres {
            message: describe(&error),
            code: error.code().map(|code| code.code().to_owned()),
        }
    }
}
