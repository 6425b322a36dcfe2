//! Who may read the console: HTTP Basic authentication against `[http] users_file`
//! (argon2 or bcrypt hashes), with failed sign-ins delayed and limited per client address.
//! `/healthz` and `/readyz` are always open; `/metrics` only needs a user with
//! `metrics_auth`. The users are replaced on SIGHUP; an address's failures are not.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::{PasswordHashText, Users};

/// Failed sign-ins an address may make within [`WINDOW`]; then it gets 429.
pub const MAX_FAILURES: usize = 10;
/// How long a failed sign-in counts against its address.
pub const WINDOW: Duration = Duration::from_secs(300);
/// How long a failed sign-in waits before its answer.
pub const FAILURE_DELAY: Duration = Duration::from_millis(500);
/// Credentials verified once are remembered (by a digest, never in clear) this many at most,
/// so that a page reloading itself does not pay argon2 at every reload.
const REMEMBERED: usize = 256;

/// What a request's credentials come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No users file: the console is open, and read-only.
    Open,
    /// Signed in as this user.
    User(String),
    /// No or wrong credentials: 401 (after a delay when they were wrong).
    Refused { wrong: bool },
    /// Too many failures from this address: 429, and when to try again.
    Limited { retry_after: Duration },
}

/// The console's users and the failures seen per address.
#[derive(Default)]
pub struct Access {
    users: RwLock<Option<Arc<Users>>>,
    metrics_auth: RwLock<bool>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// SHA-256 of `user:password` verified against the current users.
    verified: Mutex<HashMap<[u8; 32], String>>,
}

impl Access {
    pub fn new(users: Option<Users>, metrics_auth: bool) -> Access {
        let access = Access::default();
        access.replace(users, metrics_auth);
        access
    }

    /// The users and `metrics_auth` of a reloaded config; what was verified is forgotten.
    pub fn replace(&self, users: Option<Users>, metrics_auth: bool) {
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = users.map(Arc::new);
        *self.metrics_auth.write().unwrap_or_else(|e| e.into_inner()) = metrics_auth;
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Whether `path` needs a signed-in user.
    pub fn guards(&self, path: &str) -> bool {
        match path {
            "/healthz" | "/readyz" => false,
            "/metrics" => *self.metrics_auth.read().unwrap_or_else(|e| e.into_inner()),
            _ => true,
        }
    }

    /// Judges a request from `address` carrying `authorization` (the header's value).
    pub async fn judge(&self, address: IpAddr, authorization: Option<&str>) -> Verdict {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(users) = users else {
            return Verdict::Open;
        };
        if let Some(retry_after) = self.limited(address) {
            return Verdict::Limited { retry_after };
        }
        let Some((name, password)) = authorization.and_then(basic) else {
            return Verdict::Refused { wrong: false };
        };
        let key: [u8; 32] = Sha256::digest(format!("{name}:{password}")).into();
        if let Some(user) = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Verdict::User(user.clone());
        }
        let checked = {
            let (name, password) = (name.clone(), password.clone());
            tokio::task::spawn_blocking(move || verify(&users, &name, &password))
                .await
                .unwrap_or(false)
        };
        if checked {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= REMEMBERED {
                verified.clear();
            }
            verified.insert(key, name.clone());
            return Verdict::User(name);
        }
        self.failed(address);
        tokio::time::sleep(FAILURE_DELAY).await;
        Verdict::Refused { wrong: true }
    }

    fn limited(&self, address: IpAddr) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let seen = failures.get_mut(&address)?;
        while seen
            .front()
            .is_some_and(|at| now.duration_since(*at) >= WINDOW)
        {
            seen.pop_front();
        }
        if seen.is_empty() {
            failures.remove(&address);
            return None;
        }
        (seen.len() >= MAX_FAILURES).then(|| {
            let oldest = seen.front().copied().unwrap_or(now);
            WINDOW
                .saturating_sub(now.duration_since(oldest))
                .max(Duration::from_secs(1))
        })
    }

    fn failed(&self, address: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Addresses are forgotten once their failures age out; bound the table anyway.
        if failures.len() > 10_000 {
            failures.clear();
        }
        let seen = failures.entry(address).or_default();
        seen.push_back(Instant::now());
        while seen.len() > MAX_FAILURES {
            seen.pop_front();
        }
    }
}

/// `Basic base64(name:password)` read; `None` for anything else.
fn basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

/// Whether `password` is `name`'s. An unknown name costs a hash too, so that timing does
/// not tell which names exist.
fn verify(users: &Users, name: &str, password: &str) -> bool {
    let hash = users
        .entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, h)| h);
    match hash {
        Some(PasswordHashText::Argon2(text)) => PasswordHash::new(text).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        }),
        Some(PasswordHashText::Bcrypt(text)) => bcrypt::verify(password, text).unwrap_or(false),
        None => {
            let _ = bcrypt::hash(password, 8);
            false
        }
    }
}

/// A new argon2id hash of `password` with a random salt: `sdm-watch hash-password`.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn users() -> Users {
        let argon = hash_password("correct horse").unwrap();
        let bcrypt = bcrypt::hash("battery staple", 4).unwrap();
        Users::parse(
            &format!("alice:{argon}\nbob:{bcrypt}\n"),
            Path::new("users"),
        )
        .unwrap()
    }

    fn header(name: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        format!("Basic {encoded}")
    }

    #[tokio::test(start_paused = true)]
    async fn users_sign_in_and_wrong_passwords_are_limited_per_address() {
        let access = Access::new(Some(users()), false);
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            access
                .judge(here, Some(&header("alice", "correct horse")))
                .await,
            Verdict::User("alice".into())
        );
        assert_eq!(
            access
                .judge(here, Some(&header("bob", "battery staple")))
                .await,
            Verdict::User("bob".into())
        );
        assert_eq!(
            access.judge(here, None).await,
            Verdict::Refused { wrong: false }
        );
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                access.judge(here, Some(&header("alice", "guess"))).await,
                Verdict::Refused { wrong: true }
            );
        }
        assert!(matches!(
            access
                .judge(here, Some(&header("alice", "correct horse")))
                .await,
            Verdict::Limited { .. }
        ));
        assert_eq!(
            access
                .judge(there, Some(&header("alice", "correct horse")))
                .await,
            Verdict::User("alice".into()),
            "another address is not limited"
        );
        tokio::time::advance(WINDOW).await;
        assert_eq!(
            access
                .judge(here, Some(&header("alice", "correct horse")))
                .await,
            Verdict::User("alice".into()),
            "failures age out"
        );
        access.replace(None, false);
        assert_eq!(access.judge(here, None).await, Verdict::Open);
        assert!(!access.guards("/healthz") && !access.guards("/metrics") && access.guards("/"));
        access.replace(Some(users()), true);
        assert!(access.guards("/metrics"), "metrics_auth guards /metrics");
        assert!(!access.guards("/readyz"), "readiness stays open");
    }
}
