//! Sign-in tries, counted before a password is checked: at most [`PER_ADDRESS`] per client
//! address (an IPv6 address counts with its /64) and [`PER_NAME`] per user name in a
//! [`WINDOW`], whatever the concurrency, since a try takes its slots before its hash is
//! computed and gives them back only when it succeeds (or is never checked). Both tables are bounded: past
//! [`TRACKED`] keys the entry tried least recently is evicted, never one locked now; when
//! every entry is locked, a new key is refused (fail closed) rather than forgotten.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Tries an address may make within [`WINDOW`]; then it gets 429.
pub const PER_ADDRESS: usize = 10;
/// Tries a user name may be guessed at within [`WINDOW`], from any number of addresses.
pub const PER_NAME: usize = 30;
/// How long a try counts.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Keys each table follows at most.
pub const TRACKED: usize = 10_000;

/// Where a try comes from, as the limiter counts it: an IPv4 address, or an IPv6 /64 (a
/// host is given a whole /64; counting its addresses one by one would count nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl Source {
    pub fn of(address: IpAddr) -> Source {
        match address {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Source::V6Prefix(prefix)
                }
            },
        }
    }
}

/// The slots a try holds; given back with [`Limiter::give_back`].
#[derive(Debug)]
pub struct Slots {
    source: Source,
    name: String,
    at: Instant,
}

/// Tries per source and per name.
#[derive(Debug, Default)]
pub struct Limiter {
    sources: Table<Source>,
    names: Table<String>,
}

impl Limiter {
    /// When `source` may try again, if it is locked now.
    pub fn locked(&mut self, source: Source) -> Option<Duration> {
        self.sources.locked(&source, PER_ADDRESS, Instant::now())
    }

    /// Takes a slot for `source` and one for `name`, both or neither: `Err` says when to
    /// try again.
    pub fn take(&mut self, source: Source, name: &str) -> Result<Slots, Duration> {
        let now = Instant::now();
        let name = name.to_owned();
        let wait = [
            self.sources.locked(&source, PER_ADDRESS, now),
            self.names.locked(&name, PER_NAME, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        self.sources.room_for(&source, PER_ADDRESS, now)?;
        self.names.room_for(&name, PER_NAME, now)?;
        self.sources.push(source, now);
        self.names.push(name.clone(), now);
        Ok(Slots {
            source,
            name,
            at: now,
        })
    }

    /// A try that succeeded, or was never checked, gives its slots back.
    pub fn give_back(&mut self, slots: Slots) {
        self.sources.give_back(&slots.source, slots.at);
        self.names.give_back(&slots.name, slots.at);
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        (self.sources.tries.len(), self.names.tries.len())
    }
}

/// The tries of each key within the window, oldest first.
#[derive(Debug)]
struct Table<K> {
    tries: HashMap<K, VecDeque<Instant>>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            tries: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> Table<K> {
    /// Drops `key`'s tries that aged out; when `key` has `limit` left, how long until the
    /// oldest does.
    fn locked(&mut self, key: &K, limit: usize, now: Instant) -> Option<Duration> {
        let tries = self.tries.get_mut(key)?;
        age_out(tries, now);
        if tries.is_empty() {
            self.tries.remove(key);
            return None;
        }
        (tries.len() >= limit).then(|| until_free(tries, now))
    }

    /// Makes room for a new key: evicts the key tried least recently that is not locked
    /// (aged-out keys first); `Err` when every key is locked.
    fn room_for(&mut self, key: &K, limit: usize, now: Instant) -> Result<(), Duration> {
        if self.tries.contains_key(key) || self.tries.len() < TRACKED {
            return Ok(());
        }
        self.tries.retain(|_, tries| {
            age_out(tries, now);
            !tries.is_empty()
        });
        if self.tries.len() < TRACKED {
            return Ok(());
        }
        let evict = self
            .tries
            .iter()
            .filter(|(_, tries)| tries.len() < limit)
            .min_by_key(|(_, tries)| tries.back().copied())
            .map(|(key, _)| key.clone());
        match evict {
            Some(evicted) => {
                self.tries.remove(&evicted);
                Ok(())
            }
            None => Err(self
                .tries
                .values()
                .map(|tries| until_free(tries, now))
                .min()
                .unwrap_or(WINDOW)),
        }
    }

    fn push(&mut self, key: K, at: Instant) {
        self.tries.entry(key).or_default().push_back(at);
    }

    fn give_back(&mut self, key: &K, at: Instant) {
        if let Some(tries) = self.tries.get_mut(key) {
            if let Some(index) = tries.iter().rposition(|t| *t == at) {
                tries.remove(index);
            }
            if tries.is_empty() {
                self.tries.remove(key);
            }
        }
    }
}

fn age_out(tries: &mut VecDeque<Instant>, now: Instant) {
    while tries
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) >= WINDOW)
    {
        tries.pop_front();
    }
}

/// How long until the oldest of `tries` ages out (at least a second: a `Retry-After`).
fn until_free(tries: &VecDeque<Instant>, now: Instant) -> Duration {
    let oldest = tries.front().copied().unwrap_or(now);
    WINDOW
        .saturating_sub(now.saturating_duration_since(oldest))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(n: u32) -> Source {
        Source::of(IpAddr::from(n.to_be_bytes()))
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let plain: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::of(plain));
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_taken_before_the_check_and_given_back_on_success() {
        let mut limiter = Limiter::default();
        let here = v4(1);
        // Ten tries under way at once, none finished: the eleventh is refused.
        let held: Vec<Slots> = (0..PER_ADDRESS)
            .map(|_| limiter.take(here, "alice").unwrap())
            .collect();
        assert!(limiter.take(here, "alice").is_err());
        assert!(limiter.locked(here).is_some());
        // One of them succeeds: its slot comes back.
        let mut held = held.into_iter();
        limiter.give_back(held.next().unwrap());
        assert!(limiter.take(here, "alice").is_ok());
        assert!(limiter.take(here, "alice").is_err());
        tokio::time::advance(WINDOW).await;
        assert!(limiter.take(here, "alice").is_ok(), "tries age out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_name_is_limited_across_addresses() {
        let mut limiter = Limiter::default();
        for n in 0..PER_NAME as u32 {
            limiter.take(v4(n), "alice").unwrap();
        }
        let wait = limiter.take(v4(999), "alice").unwrap_err();
        assert!(wait > Duration::from_secs(200), "{wait:?}");
        assert!(limiter.take(v4(999), "bob").is_ok(), "another name is not");
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_evicts_the_oldest_never_a_locked_address() {
        let mut limiter = Limiter::default();
        let locked = v4(0);
        for _ in 0..PER_ADDRESS {
            limiter.take(locked, &format!("n{}", 0)).unwrap();
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        limiter.take(v4(1), "name1").unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        for n in 2..TRACKED as u32 {
            limiter.take(v4(n), &format!("name{n}")).unwrap();
        }
        assert_eq!(limiter.tracked().0, TRACKED);
        // One more address: the oldest unlocked one (v4(1)) goes, not the locked v4(0).
        limiter.take(v4(TRACKED as u32), "x").unwrap();
        assert_eq!(limiter.tracked().0, TRACKED, "bounded");
        assert!(
            limiter.locked(locked).is_some(),
            "the locked address is remembered"
        );
        assert!(
            !limiter.sources.tries.contains_key(&v4(1)),
            "the oldest went"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_table_of_locked_addresses_refuses_a_new_one() {
        let mut limiter = Limiter::default();
        for n in 0..TRACKED as u32 {
            for k in 0..PER_ADDRESS {
                // Names spread so that no name is locked.
                limiter
                    .take(v4(n), &format!("{}", (n as usize * PER_ADDRESS + k) % 5000))
                    .unwrap_or_else(|_| panic!("address {n} try {k}"));
            }
        }
        assert!(limiter.take(v4(TRACKED as u32 + 1), "fresh").is_err());
        assert_eq!(limiter.tracked().0, TRACKED);
    }
}
