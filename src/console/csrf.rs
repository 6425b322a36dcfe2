//! Tokens that tie a console form to the user it was shown to and the time it was shown:
//! `<issued ms>.<HMAC-SHA256(key, user, issued ms) in hex>`, with a key made at start (a
//! restart invalidates the forms shown before it). A token is good for an hour and once:
//! a replayed one is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// How long a form stays good after it was shown.
pub const TOKEN_LIFETIME_MS: i64 = 3_600_000;

pub struct Csrf {
    key: [u8; 32],
    /// Tokens used, with when they were issued (forgotten once expired).
    used: Mutex<HashMap<String, i64>>,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    NotYours,
    Expired,
    Replayed,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Malformed => "the form's token is missing or malformed",
            Refused::NotYours => "the form's token was not issued to you by this sdm-watch",
            Refused::Expired => "the form is over an hour old: reload the page and try again",
            Refused::Replayed => "this form was sent already: reload the page to act again",
        }
    }
}

impl Csrf {
    pub fn new() -> Csrf {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No randomness: derive one from what differs between processes and starts.
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            key = Sha256::digest(seed).into();
        }
        Csrf {
            key,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `user`'s form shown at `now_ms`.
    pub fn issue(&self, user: &str, now_ms: i64) -> String {
        format!("{now_ms}.{}", hex(&self.mac(user, now_ms)))
    }

    /// Accepts `token` for `user` at `now_ms` once.
    pub fn check(&self, token: &str, user: &str, now_ms: i64) -> Result<(), Refused> {
        let (issued_text, mac) = token.split_once('.').ok_or(Refused::Malformed)?;
        let issued: i64 = issued_text.parse().map_err(|_| Refused::Malformed)?;
        // Only the spelling `issue` gives: `0`+token, `+`+token would be the same token
        // under another name, and get past the replay check keyed by the text.
        if issued.to_string() != issued_text {
            return Err(Refused::Malformed);
        }
        if !constant_time_eq(mac.as_bytes(), hex(&self.mac(user, issued)).as_bytes()) {
            return Err(Refused::NotYours);
        }
        let age = now_ms.saturating_sub(issued);
        if !(0..=TOKEN_LIFETIME_MS).contains(&age) {
            return Err(Refused::Expired);
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.retain(|_, issued| now_ms.saturating_sub(*issued) <= TOKEN_LIFETIME_MS);
        if used.insert(token.to_owned(), issued).is_some() {
            return Err(Refused::Replayed);
        }
        Ok(())
    }

    /// HMAC-SHA256 (RFC 2104) of the user and the time, under the key.
    fn mac(&self, user: &str, issued: i64) -> [u8; 32] {
        let mut inner = Sha256::new();
        inner.update(self.key.map(|b| b ^ 0x36));
        inner.update([0u8; 32].map(|b| b ^ 0x36));
        inner.update(user.as_bytes());
        inner.update([0]);
        inner.update(issued.to_be_bytes());
        let mut outer = Sha256::new();
        outer.update(self.key.map(|b| b ^ 0x5c));
        outer.update([0u8; 32].map(|b| b ^ 0x5c));
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

impl Default for Csrf {
    fn default() -> Self {
        Self::new()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_once_for_its_user_within_the_hour() {
        let csrf = Csrf::new();
        let token = csrf.issue("alice", 1_000);
        assert_eq!(csrf.check(&token, "bob", 2_000), Err(Refused::NotYours));
        assert_eq!(csrf.check(&token, "alice", 2_000), Ok(()));
        assert_eq!(csrf.check(&token, "alice", 3_000), Err(Refused::Replayed));
        let old = csrf.issue("alice", 1_000);
        assert_eq!(
            csrf.check(&old, "alice", 1_000 + TOKEN_LIFETIME_MS + 1),
            Err(Refused::Expired)
        );
        assert_eq!(csrf.check("nonsense", "alice", 0), Err(Refused::Malformed));
        let spelled = csrf.issue("alice", 5_000);
        assert_eq!(csrf.check(&spelled, "alice", 6_000), Ok(()));
        for respelled in [
            format!("0{spelled}"),
            format!("00{spelled}"),
            format!("+{spelled}"),
            spelled.to_uppercase(),
        ] {
            assert!(
                csrf.check(&respelled, "alice", 6_000).is_err(),
                "{respelled} is the used token spelled another way"
            );
        }
        let forged = format!("1000.{}", "0".repeat(64));
        assert_eq!(csrf.check(&forged, "alice", 2_000), Err(Refused::NotYours));
        assert_ne!(
            Csrf::new().issue("alice", 1),
            Csrf::new().issue("alice", 1),
            "a key each"
        );
    }
}
