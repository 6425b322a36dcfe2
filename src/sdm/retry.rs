//! Exponential backoff with jitter around every API call, never sooner than the server's
//! `Retry-After`, and a client-side cap on the request rate shared by all calls.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::backoff::Backoff;

/// An error a retried call can end with: whether another try may help, how long the
/// server asked to wait, and how to say that the tries ran out.
pub trait Retryable: std::fmt::Display + Sized {
    fn is_retryable(&self) -> bool;
    fn retry_after(&self) -> Option<Duration>;
    fn gave_up(self, attempts: u32, elapsed: Duration) -> Self;
}

/// At most one retry warning per this long per client: an outage of minutes would
/// otherwise log a warning per attempt. The others go to the debug level, and the next
/// warning counts them.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Whether a retry is warned of now, and how many were held back since the last warning.
#[derive(Debug, Default)]
struct WarnGate {
    last: Option<Instant>,
    held_back: u64,
}

impl WarnGate {
    fn pass(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < WARN_EVERY)
        {
            self.held_back = self.held_back.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// How often and how long to retry, from `[retry]`.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    backoff: Backoff,
    max_elapsed: Duration,
    /// Shared by the clones of one client's policy.
    warnings: Arc<std::sync::Mutex<WarnGate>>,
}

impl RetryPolicy {
    pub fn new(backoff: Backoff, max_elapsed: Duration) -> Self {
        Self {
            backoff,
            max_elapsed,
            warnings: Arc::default(),
        }
    }

    /// The same schedule, giving up after `max_elapsed` (never later than this one does).
    pub fn with_max_elapsed(&self, max_elapsed: Duration) -> Self {
        Self {
            backoff: self.backoff,
            max_elapsed: max_elapsed.min(self.max_elapsed),
            warnings: self.warnings.clone(),
        }
    }

    /// A server's `Retry-After` as this policy honours it: never longer than
    /// `retry.max_interval`, so that a huge or hostile value neither overflows a clock nor
    /// stalls the watcher for good.
    pub fn cap(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.backoff.max)
    }

    /// Runs `call` until it succeeds, fails for good, or `max_elapsed` would be exceeded.
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut call: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let mut delays = self.backoff.delays();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(error) if !error.is_retryable() => return Err(error),
                Err(error) => error,
            };
            let backoff = delays.next().unwrap_or(self.backoff.max);
            let wait = backoff.max(self.cap(error.retry_after().unwrap_or_default()));
            let elapsed = started.elapsed();
            if elapsed.saturating_add(wait) > self.max_elapsed {
                return Err(error.gave_up(attempts, elapsed));
            }
            let retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            let warned = self
                .warnings
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pass(Instant::now());
            match warned {
                Some(held_back) => {
                    warn!(call = what, attempt = attempts, retry_in_ms, held_back, error = %error, "API call failed; retrying")
                }
                None => {
                    debug!(call = what, attempt = attempts, retry_in_ms, error = %error, "API call failed; retrying")
                }
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// Spaces requests at least `1 / rate` seconds apart across every clone, so that concurrent
/// callers together stay under the cap.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    spacing: Duration,
    next_slot: Arc<Mutex<Instant>>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        Self {
            // The config keeps the rate within (0, 10]; anything else spaces requests a second.
            spacing: Duration::try_from_secs_f64(1.0 / per_second)
                .unwrap_or(Duration::from_secs(1)),
            next_slot: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Lets no request go for `wait` from now (a `Retry-After` from the server).
    pub async fn defer(&self, wait: Duration) {
        let mut next = self.next_slot.lock().await;
        let now = Instant::now();
        *next = (*next).max(now.checked_add(wait).unwrap_or(now));
    }

    /// Waits for this caller's turn.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next_slot.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::sdm::ApiError;

    #[test]
    fn retry_warnings_are_at_most_one_per_30_seconds_and_count_the_rest() {
        let mut gate = WarnGate::default();
        let start = Instant::now();
        assert_eq!(gate.pass(start), Some(0));
        for second in 1..30 {
            assert_eq!(gate.pass(start + Duration::from_secs(second)), None);
        }
        assert_eq!(
            gate.pass(start + WARN_EVERY),
            Some(29),
            "the held back, counted"
        );
        assert_eq!(gate.pass(start + WARN_EVERY + Duration::from_secs(1)), None);
    }

    fn policy(initial_ms: u64, max_ms: u64, elapsed_ms: u64) -> RetryPolicy {
        RetryPolicy::new(
            Backoff::new(
                Duration::from_millis(initial_ms),
                Duration::from_millis(max_ms),
                2.0,
            ),
            Duration::from_millis(elapsed_ms),
        )
    }

    fn server_error(retry_after: Option<Duration>) -> ApiError {
        ApiError::Server {
            endpoint: "jobs/".into(),
            status: 503,
            retry_after,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_a_floor_on_the_wait() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), ApiError> = policy(10, 10_000, 60_000)
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(server_error(Some(Duration::from_secs(7))))
                } else {
                    Ok(())
                }
            })
            .await;
        assert!(result.is_ok());
        assert!(started.elapsed() >= Duration::from_secs(7));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_max_interval_waits_max_interval() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), ApiError> = policy(10, 2_000, 60_000)
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(server_error(Some(Duration::from_secs(u64::MAX))))
                } else {
                    Ok(())
                }
            })
            .await;
        assert!(result.is_ok());
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert!(started.elapsed() < Duration::from_secs(3));
        // The limiter takes any deferral without overflowing its clock.
        let limiter = RateLimiter::new(10.0);
        limiter.defer(Duration::from_secs(u64::MAX)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_before_max_elapsed_is_exceeded() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), ApiError> = policy(100, 400, 3_000)
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(server_error(None))
            })
            .await;
        let error = result.unwrap_err();
        assert!(matches!(error, ApiError::GaveUp { .. }), "{error}");
        assert!(started.elapsed() <= Duration::from_secs(3));
        assert!(calls.load(Ordering::SeqCst) >= 5, "too few attempts");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), ApiError> = policy(10, 100, 60_000)
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ApiError::Unauthorized {
                    endpoint: "jobs/".into(),
                    status: 401,
                    detail: "Invalid token.".into(),
                })
            })
            .await;
        assert!(matches!(result, Err(ApiError::Unauthorized { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deferral_holds_every_caller() {
        let limiter = RateLimiter::new(10.0);
        limiter.acquire().await;
        let started = Instant::now();
        limiter.defer(Duration::from_secs(3)).await;
        limiter.acquire().await;
        assert!(started.elapsed() >= Duration::from_secs(3));
        // A shorter deferral never brings the next slot forward.
        let before = Instant::now();
        limiter.defer(Duration::from_secs(5)).await;
        limiter.defer(Duration::from_secs(1)).await;
        limiter.acquire().await;
        assert!(before.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_concurrent_callers() {
        let limiter = RateLimiter::new(5.0);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    limiter.acquire().await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // 20 requests at 5/s: the first goes at once, the last 19 spacings later.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(3_800), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(4_000), "{elapsed:?}");
    }
}
