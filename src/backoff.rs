//! Exponential backoff with jitter: the schedule shared by API retries and alert deliveries.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Waits growing from `initial` by `multiplier` up to `max`, each with random jitter.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, multiplier: f64) -> Self {
        Self {
            initial,
            max,
            multiplier,
        }
    }

    /// The successive waits; jitter adds up to the wait's own length, and no wait passes `max`.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let max = self.max;
        ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(self.multiplier as f32)
            .with_jitter()
            .without_max_times()
            .build()
            .map(move |delay| delay.min(max))
    }

    /// The wait after the `attempt`-th failure (1-based).
    pub fn after_attempt(&self, attempt: u32) -> Duration {
        self.delays()
            .nth(attempt.saturating_sub(1).min(64) as usize)
            .unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(1_000),
            2.0,
        )
    }

    #[test]
    fn delays_grow_exponentially_with_jitter_and_stay_capped() {
        let delays: Vec<Duration> = backoff().delays().take(8).collect();
        for (n, delay) in delays.iter().enumerate() {
            let base = Duration::from_millis((100u64 << n).min(1_000));
            assert!(*delay >= base, "delay {n} = {delay:?} below {base:?}");
            assert!(
                *delay <= Duration::from_millis(1_000),
                "delay {n} = {delay:?} over cap"
            );
        }
        let other: Vec<Duration> = backoff().delays().take(8).collect();
        assert_ne!(delays, other, "jitter makes two schedules differ");
    }

    #[test]
    fn the_wait_after_an_attempt_follows_the_schedule() {
        assert!(backoff().after_attempt(1) < Duration::from_millis(200));
        assert!(backoff().after_attempt(3) >= Duration::from_millis(400));
        assert_eq!(backoff().after_attempt(40), Duration::from_millis(1_000));
    }
}
