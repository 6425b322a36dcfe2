//! Who may read the console: HTTP Basic authentication against `[http] users_file`
//! (argon2 or bcrypt hashes), with sign-in tries limited per client address and per user
//! name before any hash is checked (`super::limiter`), failed ones delayed, and at most
//! [`VERIFYING`] hashes checked at a time (argon2 takes 19 MiB each). `/healthz` and
//! `/readyz` are always open; `/metrics` only needs a user with `metrics_auth`. The users
//! are replaced on SIGHUP; the tries counted are not.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::limiter::{Limiter, Source};
use super::refused::{Refusal, refused};
use crate::config::{PasswordHashText, Users};

pub use super::limiter::{PER_ADDRESS as MAX_FAILURES, WINDOW};
/// How long a failed sign-in waits before its answer.
pub const FAILURE_DELAY: Duration = Duration::from_millis(500);
/// Password hashes checked at once; more tries wait their turn.
pub const VERIFYING: usize = 2;
/// How long a try waits for its turn before it is answered 503.
const TURN_WAIT: Duration = Duration::from_secs(10);
/// Credentials verified once are remembered (by a digest with the address, never in
/// clear) this many at most, so that a page reloading itself does not pay argon2 at every
/// reload.
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
    /// Too many tries from this address or at this name: 429, and when to try again.
    Limited { retry_after: Duration },
    /// Too many passwords being checked: 503, try again in a moment.
    Busy,
}

/// The console's users and the sign-in tries counted.
pub struct Access {
    users: RwLock<Option<Arc<Users>>>,
    metrics_auth: RwLock<bool>,
    limiter: Mutex<Limiter>,
    /// Turns to check a hash: bounds the memory and CPU that tries can take.
    verifying: Arc<Semaphore>,
    /// SHA-256 of `source:user:password` verified against the current users: only the
    /// address that proved them skips the hash again.
    verified: Mutex<HashMap<[u8; 32], String>>,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            users: RwLock::default(),
            metrics_auth: RwLock::default(),
            limiter: Mutex::default(),
            verifying: Arc::new(Semaphore::new(VERIFYING)),
            verified: Mutex::default(),
        }
    }
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
        let source = Source::of(address);
        if let Some(retry_after) = self.limiter().locked(source) {
            refused(Refusal::LockedOut, address);
            return Verdict::Limited { retry_after };
        }
        let Some((name, password)) = authorization.and_then(basic) else {
            return Verdict::Refused { wrong: false };
        };
        let key = remembered_key(source, &name, &password);
        if let Some(user) = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Verdict::User(user.clone());
        }
        // The slots are taken before the hash is checked: concurrent tries count at once.
        let slots = match self.limiter().take(source, &name) {
            Ok(slots) => slots,
            Err(retry_after) => {
                refused(Refusal::LockedOut, address);
                return Verdict::Limited { retry_after };
            }
        };
        let Some(checked) = self.check(users, &name, &password).await else {
            // Not checked: the try does not count.
            self.limiter().give_back(slots);
            refused(Refusal::Busy, address);
            return Verdict::Busy;
        };
        if checked {
            self.limiter().give_back(slots);
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= REMEMBERED {
                verified.clear();
            }
            verified.insert(key, name.clone());
            return Verdict::User(name);
        }
        refused(Refusal::SignInFailed, address);
        tokio::time::sleep(FAILURE_DELAY).await;
        Verdict::Refused { wrong: true }
    }

    /// Checks `password` on a blocking thread once a turn is free; `None` when no turn
    /// came within [`TURN_WAIT`].
    async fn check(&self, users: Arc<Users>, name: &str, password: &str) -> Option<bool> {
        let turn = tokio::time::timeout(TURN_WAIT, self.verifying.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        let (name, password) = (name.to_owned(), password.to_owned());
        let checked = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            verify(&users, &name, &password)
        })
        .await
        .unwrap_or(false);
        Some(checked)
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn remembered_key(source: Source, name: &str, password: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(format!("{source:?}\0{name}\0").as_bytes());
    digest.update(password.as_bytes());
    digest.finalize().into()
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

/// Whether `password` is `name`'s. An unknown name is checked against a real entry's
/// hash, so that it costs what a known name does and timing does not tell which names
/// exist.
fn verify(users: &Users, name: &str, password: &str) -> bool {
    let (known, hash) = hash_for(users, name);
    let matches = match hash {
        Some(PasswordHashText::Argon2(text)) => PasswordHash::new(text).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        }),
        Some(PasswordHashText::Bcrypt(text)) => bcrypt::verify(password, text).unwrap_or(false),
        None => false,
    };
    known && matches
}

/// The hash `name`'s password is checked against, and whether it is `name`'s own. An
/// unknown name gets an entry picked by a digest of the name: always the same one for the
/// same name, and over many names as often each as the entries are.
fn hash_for<'a>(users: &'a Users, name: &str) -> (bool, Option<&'a PasswordHashText>) {
    if let Some((_, hash)) = users.entries.iter().find(|(n, _)| n == name) {
        return (true, Some(hash));
    }
    let digest = Sha256::digest(name.as_bytes());
    let pick = usize::from(digest[0]) << 8 | usize::from(digest[1]);
    let entry = users.entries.get(pick % users.entries.len().max(1));
    (false, entry.map(|(_, hash)| hash))
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("no random salt: {0}")]
    Salt(getrandom::Error),
    #[error("argon2: {0}")]
    Argon2(argon2::password_hash::Error),
}

/// A new argon2id hash of `password` with a random salt: `sdm-watch hash-password`.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(HashError::Salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(HashError::Argon2)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(HashError::Argon2)
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_guesses_cannot_race_the_limit() {
        let bcrypt = bcrypt::hash("battery staple", 4).unwrap();
        let users = Users::parse(&format!("bob:{bcrypt}\n"), Path::new("users")).unwrap();
        let access = Arc::new(Access::new(Some(users), false));
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let guesses: Vec<_> = (0..50)
            .map(|n| {
                let access = access.clone();
                tokio::spawn(async move {
                    access
                        .judge(here, Some(&header("bob", &format!("guess {n}"))))
                        .await
                })
            })
            .collect();
        let mut checked = 0;
        for guess in guesses {
            match guess.await.unwrap() {
                Verdict::Refused { wrong: true } => checked += 1,
                Verdict::Limited { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(checked, MAX_FAILURES, "only ten passwords were checked");
        assert!(matches!(
            access
                .judge(here, Some(&header("bob", "battery staple")))
                .await,
            Verdict::Limited { .. }
        ));
    }

    #[test]
    fn an_unknown_name_is_checked_against_a_real_entry() {
        let users = users();
        let (known, hash) = hash_for(&users, "alice");
        assert!(known && matches!(hash, Some(PasswordHashText::Argon2(_))));
        let mut picked = std::collections::HashSet::new();
        for n in 0..64 {
            let (known, hash) = hash_for(&users, &format!("mallory{n}"));
            assert!(!known);
            let hash = hash.expect("a real entry's hash");
            assert!(users.entries.iter().any(|(_, h)| h == hash));
            picked.insert(matches!(hash, PasswordHashText::Argon2(_)));
        }
        assert_eq!(picked.len(), 2, "unknown names fall on every entry's cost");
        // alice's password under another name is no way in.
        assert!(!verify(&users, "zed", "correct horse"));
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
