//! Issue 22: replicas sharing organisations on PostgreSQL, measured from outside (the
//! leases in the database, the requests the simulator saw): three replicas spreading 300
//! organisations, a fourth taking its share, and a SIGKILLed one's organisations polled
//! again.

use std::time::{Duration, Instant};

use sdm_watch::sim::Simulator;
use testkit::Daemon;
use testkit::leases::{Leases, counts};

use super::{Figure, on_postgres, organisations_config, scale, scaled, workdir};

pub async fn sharing(figures: &mut Vec<Figure>) {
    let count = scaled(300, 6);
    let (interval, lease) = if scale() >= 1.0 { (60, 15) } else { (2, 2) };
    let patience = Duration::from_secs(600);
    let pg = testkit::postgres::Postgres::start();
    let sim = Simulator::start().await.unwrap();
    let dir = workdir();
    let (names, config) = organisations_config(dir.path(), &sim, count, interval);
    let config = on_postgres(&config, &pg.url(), &format!("{lease}s"));
    let leases = Leases::connect(&pg.url(), &names).await;
    let start = |_| Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);

    // Three replicas start together.
    let started = Instant::now();
    let mut replicas: Vec<Daemon> = (0..3).map(start).collect();
    let pids: Vec<u32> = replicas.iter().map(Daemon::pid).collect();
    let bound = count.div_ceil(3) + 1;
    let held = leases.wait_for_spread(&pids, patience).await;
    let spread = counts(&held);
    figures.push(
        Figure::new(
            format!("3 replicas x {count} organisations: spread"),
            format!(
                "{} to {} each, all held {:.1} s after the start",
                spread.values().min().unwrap(),
                spread.values().max().unwrap(),
                started.elapsed().as_secs_f64()
            ),
        )
        .target(format!("<= ceil({count} / 3) + 1 = {bound} each"), true),
    );

    // A fourth joins: from its first step to holding its share.
    replicas.push(start(3));
    let newcomer = replicas[3].pid();
    let deadline = Instant::now() + patience;
    while !leases.present().await.contains(&newcomer) {
        assert!(
            Instant::now() < deadline,
            "the fourth never said it is alive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let joined = Instant::now();
    let all: Vec<u32> = replicas.iter().map(Daemon::pid).collect();
    let held = leases.wait_for_spread(&all, patience).await;
    let join = joined.elapsed().as_secs_f64();
    let share = count / 4; // at least the floor
    let got = counts(&held)[&newcomer];
    figures.push(
        Figure::new(
            "a fourth replica joins: it holds its share",
            format!("{got} organisations (share {share}) {join:.1} s after its first step"),
        )
        .target(
            format!("<= two leases ({} s)", 2 * lease),
            got >= share && join <= 2.0 * lease as f64,
        ),
    );

    // One of the first three is SIGKILLed: to the last of its organisations polled again.
    let victim = replicas[0].pid();
    let orphans: Vec<&String> = held
        .iter()
        .filter(|(_, pid)| **pid == victim)
        .map(|(org, _)| org)
        .collect();
    let killed_at = Instant::now();
    replicas.remove(0).kill().await;
    let agent = format!("-{victim}-");
    let takeover = loop {
        let requests = sim.requests();
        let resumed = |org: &&String| {
            requests
                .iter()
                .filter(|r| r.organisation.as_deref() == Some(org.as_str()))
                .find(|r| r.at > killed_at && !r.user_agent.contains(&agent))
                .map(|r| r.at)
        };
        let waiting: Vec<&&String> = orphans
            .iter()
            .filter(|org| resumed(org).is_none())
            .collect();
        if waiting.is_empty() {
            break orphans
                .iter()
                .filter_map(resumed)
                .max()
                .map_or(0.0, |at| (at - killed_at).as_secs_f64());
        }
        assert!(
            killed_at.elapsed() < patience,
            "{waiting:?} of the dead replica's {orphans:?} not polled again after {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let survivors: Vec<u32> = replicas.iter().map(Daemon::pid).collect();
    let held = leases.wait_for_spread(&survivors, patience).await;
    figures.push(
        Figure::new(
            "a replica is SIGKILLed: its organisations polled again",
            format!(
                "{} organisations, the last {takeover:.1} s after the kill; then {} to {} each",
                orphans.len(),
                counts(&held).values().min().unwrap(),
                counts(&held).values().max().unwrap()
            ),
        )
        .target(
            format!("<= the lease plus one interval ({} s)", lease + interval),
            takeover <= (lease + interval) as f64,
        ),
    );
    for replica in replicas {
        replica.finish().await;
    }
}
