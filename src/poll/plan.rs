//! What a cycle asks of the API, decided from what the store knows. Pure functions, no I/O
//! and no clock of their own, so that they are tested on their own and exhaustively.
//!
//! Every cycle lists, in this order, each job once:
//! 1. `status=running` and `status=pending` created before the window below starts,
//!    however old: they show every older job that can still change, including a finished
//!    job that was run again;
//! 2. the jobs created since the window starts, [`RECHECK`] before the previous complete
//!    cycle began (on the earlier of the local and the server's clock), whatever their
//!    status: new jobs, jobs that became visible late, and jobs dated by a clock running
//!    behind (the very first attempt starts it at `poll.lookback`, and bounds the active
//!    listings at `poll.lookback` on the local clock, never before that);
//! 3. for each tracked active job that no listing showed (it finished, or was deleted): a
//!    listing of its exact creation date, or of a range of them where that takes fewer
//!    requests, then, if still missing, its detail.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::domain::time::from_micros;
use crate::domain::{ProjectId, Status};
use crate::sdm::{JobFilter, ServerClock};
use crate::store::Bookkeeping;
use crate::store::jobs::{ActiveJob, TrackedJob};

/// How far before the previous cycle the listing of new jobs starts. It covers a job that
/// shows up in listings up to 5 minutes after its `creation_date`, dated by an API clock
/// up to 10 minutes behind, and a minute to spare; it costs the jobs created in those 16
/// minutes, read again each cycle.
pub const RECHECK: Duration = Duration::from_secs(16 * 60);

/// A listing that shrank while it was read (a job it held may have slipped onto a page
/// already read) is read again, up to this many reads in all.
pub const READS: usize = 3;

/// The listings of the jobs that can still change, created up to `window` (where the
/// listing of new jobs starts) and a microsecond beyond: every job is read once, by these
/// or by that one, whether the API's bounds are strict or not (at most the jobs of that
/// one microsecond are read twice).
pub fn active_listings(window: OffsetDateTime) -> [JobFilter; 2] {
    let before = window.checked_add(time::Duration::microseconds(1));
    [Status::Running, Status::Pending].map(|status| JobFilter {
        status: Some(status),
        created_before: before,
        ..JobFilter::default()
    })
}

/// The listing of the jobs created since `window`, whatever their status.
pub fn new_jobs_listing(window: OffsetDateTime) -> JobFilter {
    JobFilter {
        created_after: Some(window),
        ..JobFilter::default()
    }
}

/// When this cycle began on the earlier of two clocks: the local one, and the server's
/// as its first answer's `Date` tells it (less the time it took to come, and the second
/// that `Date` truncates). Windows placed from it hold whichever clock is slow.
pub fn cycle_start(
    local: OffsetDateTime,
    started: Instant,
    server: Option<ServerClock>,
) -> OffsetDateTime {
    match server.filter(|clock| clock.received >= started) {
        Some(clock) => {
            let travel = (clock.received - started).saturating_add(Duration::from_secs(1));
            clock
                .date
                .checked_sub(travel.try_into().unwrap_or(time::Duration::MAX))
                .map_or(local, |server| local.min(server))
        }
        None => local,
    }
}

/// Where the listing of new jobs starts (`created_after`). Until a cycle completes it is
/// the floor (`poll.lookback` before the very first cycle); then [`RECHECK`] before the
/// last complete cycle began, never below the floor.
pub fn new_jobs_after(book: &Bookkeeping, floor: OffsetDateTime) -> OffsetDateTime {
    let anchor = book.anchor_us.and_then(from_micros);
    match anchor.filter(|_| book.first_cycle_done) {
        Some(anchor) => anchor
            .checked_sub(time::Duration::seconds(RECHECK.as_secs() as i64))
            .map_or(floor, |start| start.max(floor)),
        None => floor,
    }
}

/// The listing of one creation date, or of a range of them, from `first_us` to `last_us`
/// (µs): a microsecond beyond each end, since the API's bounds may be strict. At the ends of
/// the dates the API can write (year 1, year 9999) that end is left open.
pub fn range_listing(first_us: i64, last_us: i64, project: Option<ProjectId>) -> JobFilter {
    let micro = time::Duration::microseconds(1);
    JobFilter {
        project,
        created_after: from_micros(first_us).and_then(|at| at.checked_sub(micro)),
        created_before: from_micros(last_us).and_then(|at| at.checked_add(micro)),
        ..JobFilter::default()
    }
}

/// The ranges of creation dates (first, last, µs) whose listings find the jobs created
/// at `targets` (sorted, without repeats) in the fewest requests. `count(first, last)`
/// tells how many tracked jobs were created in a range, both ends included; a range costs
/// a request per `page_size` of them. Neighbours share a range where that costs fewer
/// requests than apart, which finds a batch that finished together in a few pages while
/// a job among a thousand created in the same second costs one request. Below `floor_us`
/// the store does not know every job (it tracks only active ones there), so targets
/// there are listed alone.
pub fn cover<E>(
    targets: &[i64],
    page_size: u32,
    floor_us: i64,
    mut count: impl FnMut(i64, i64) -> Result<u64, E>,
) -> Result<Vec<(i64, i64)>, E> {
    let page_size = u64::from(page_size.max(1));
    let mut cost = |first: i64, last: i64| -> Result<u64, E> {
        Ok(count(first, last)?.div_ceil(page_size).max(1))
    };
    let mut ranges = Vec::new();
    let mut targets = targets.iter().copied().peekable();
    while let Some(first) = targets.next() {
        let mut last = first;
        let mut spent = cost(first, first)?;
        while let Some(&next) = targets.peek() {
            if first < floor_us {
                break;
            }
            let merged = cost(first, next)?;
            if merged >= spent + cost(next, next)? {
                break;
            }
            spent = merged;
            last = next;
            targets.next();
        }
        ranges.push((first, last));
    }
    Ok(ranges)
}

/// The tracked active jobs this cycle must look up: watched, shown by no listing of this
/// cycle, and due (a job whose lookup failed waits for its own backoff).
pub fn to_look_up<'a>(
    active: &'a [ActiveJob],
    seen: &HashSet<String>,
    watched: impl Fn(&TrackedJob) -> bool,
    now_ms: i64,
) -> Vec<&'a ActiveJob> {
    active
        .iter()
        .filter(|active| !seen.contains(&active.job.id) && watched(&active.job))
        .filter(|active| active.lookup_next_ms.is_none_or(|next| next <= now_ms))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Tracked jobs created at each listed µs (with repeats for jobs sharing a date).
    fn counter(tracked: &[i64]) -> impl FnMut(i64, i64) -> Result<u64, ()> + '_ {
        |first, last| Ok(tracked.iter().filter(|&&t| t >= first && t <= last).count() as u64)
    }

    fn requests(ranges: &[(i64, i64)], tracked: &[i64], page_size: u64) -> u64 {
        let mut count = counter(tracked);
        ranges
            .iter()
            .map(|&(first, last)| count(first, last).unwrap().div_ceil(page_size).max(1))
            .sum()
    }

    #[test]
    fn a_finished_batch_is_listed_in_pages_and_stragglers_alone() {
        // A history of a job every 10 µs; a batch of 500 created a µs apart among it
        // finished, and two jobs far from it: the batch is listed in pages of 100 (550
        // jobs in its range) instead of 500 requests, the other two alone.
        let mut tracked: Vec<i64> = (0..10_000).map(|i| i * 10).collect();
        let batch: Vec<i64> = (50_001..50_501).filter(|t| t % 10 != 0).collect();
        tracked.extend(&batch);
        tracked.sort_unstable();
        let mut targets = batch.clone();
        targets.insert(0, 40);
        targets.push(90_000);
        let ranges = cover(&targets, 100, 0, counter(&tracked)).unwrap();
        assert_eq!(ranges.first(), Some(&(40, 40)));
        assert_eq!(ranges.last(), Some(&(90_000, 90_000)));
        assert_eq!(requests(&ranges, &tracked, 100), 2 + 5);
    }

    #[test]
    fn two_jobs_among_a_thousand_of_the_same_second_cost_one_request_each() {
        // Issue 11, case 14: a thousand jobs created within one second, two of them done.
        let tracked: Vec<i64> = (0..1000).map(|i| 5_000_000 + i * 997).collect();
        let targets = [tracked[100], tracked[900]];
        let ranges = cover(&targets, 100, 0, counter(&tracked)).unwrap();
        assert_eq!(ranges, [(targets[0], targets[0]), (targets[1], targets[1])]);
    }

    #[test]
    fn below_the_floor_every_target_is_listed_alone() {
        let created: Vec<i64> = (0..50).collect();
        let ranges = cover(&created, 100, 1_000, counter(&created)).unwrap();
        assert_eq!(ranges.len(), 50);
    }

    proptest! {
        /// Every target is inside a range, and the ranges never cost more requests than
        /// listing each target alone.
        #[test]
        fn ranges_cover_every_target_for_no_more_than_one_request_each(
            mut tracked in prop::collection::vec(0i64..2_000, 1..300),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..60),
            page_size in 1u64..50,
        ) {
            tracked.sort_unstable();
            let mut targets: Vec<i64> = picks.iter().map(|pick| *pick.get(&tracked)).collect();
            targets.sort_unstable();
            targets.dedup();
            let ranges = cover(&targets, page_size as u32, 0, counter(&tracked)).unwrap();
            for target in &targets {
                prop_assert!(ranges.iter().any(|&(first, last)| first <= *target && *target <= last));
            }
            prop_assert!(ranges.windows(2).all(|pair| pair[0].1 < pair[1].0));
            let alone: u64 = targets
                .iter()
                .map(|&t| counter(&tracked)(t, t).unwrap().div_ceil(page_size).max(1))
                .sum();
            prop_assert!(requests(&ranges, &tracked, page_size) <= alone);
        }
    }

    #[test]
    fn the_new_jobs_window_starts_at_the_floor_then_a_margin_before_the_last_cycle() {
        let floor = OffsetDateTime::UNIX_EPOCH + time::Duration::days(10);
        let anchor = floor + time::Duration::days(3);
        let mut book = Bookkeeping {
            anchor_us: Some(crate::domain::time::micros(anchor)),
            ..Bookkeeping::default()
        };
        // A first cycle that failed and is tried again still starts at the floor.
        assert_eq!(new_jobs_after(&book, floor), floor);
        book.first_cycle_done = true;
        assert_eq!(new_jobs_after(&book, floor), anchor - RECHECK);
        book.anchor_us = Some(crate::domain::time::micros(floor));
        assert_eq!(new_jobs_after(&book, floor), floor);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cycle_starts_on_the_slower_clock() {
        let local = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let started = Instant::now();
        assert_eq!(cycle_start(local, started, None), local);
        tokio::time::advance(Duration::from_secs(2)).await;
        let behind = ServerClock {
            date: local - time::Duration::minutes(10),
            received: Instant::now(),
        };
        assert_eq!(
            cycle_start(local, started, Some(behind)),
            local - time::Duration::minutes(10) - time::Duration::seconds(3)
        );
        let ahead = ServerClock {
            date: local + time::Duration::minutes(10),
            ..behind
        };
        assert_eq!(cycle_start(local, started, Some(ahead)), local);
        let stale = ServerClock {
            received: started - Duration::from_secs(1),
            ..behind
        };
        assert_eq!(cycle_start(local, started, Some(stale)), local);
    }
}
