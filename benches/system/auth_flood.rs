//! Issue 31: the console under a flood of wrong passwords (argon2 users, as
//! `sdm-watch hash-password` makes them): 200 concurrent tries from one address, then 200
//! from 50 addresses, while another user signs in with the right password from another
//! address. Peak RSS (the kernel's high-water mark), RSS after the flood (is the memory
//! given back?), the right sign-in's answer time, and how many hashes were checked.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Simulator};
use testkit::process::high_water_kib;

use super::{Figure, mib, scaled};

fn client_from(address: IpAddr) -> reqwest::Client {
    testkit::http_with(|builder| {
        builder
            .local_address(address)
            .timeout(Duration::from_secs(60))
    })
}

/// `tries` wrong passwords for alice at once, spread over `addresses` source addresses,
/// while bob signs in once from 127.0.0.9; returns the codes and bob's answer time.
async fn flood(url: &str, tries: usize, addresses: usize) -> (Vec<u16>, Duration) {
    let mut tasks = Vec::new();
    for n in 0..tries {
        let address: IpAddr = format!("127.0.1.{}", 1 + n % addresses).parse().unwrap();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            client_from(address)
                .get(url)
                .basic_auth("alice", Some(format!("guess {n}")))
                .send()
                .await
                .map_or(0, |answer| answer.status().as_u16())
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let bob = client_from("127.0.0.9".parse().unwrap())
        .get(url)
        .basic_auth("bob", Some("battery staple"))
        .send()
        .await
        .unwrap();
    let bob_took = started.elapsed();
    assert_eq!(bob.status(), 200, "bob signs in during the flood");
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    (codes, bob_took)
}

pub async fn auth_flood(figures: &mut Vec<Figure>) {
    let sim = Simulator::start().await.unwrap();
    sim.add_job(NewJob::new(Status::Running));
    let dir = tempfile::tempdir().unwrap();
    let alice = sdm_watch::ops::auth::hash_password("correct horse").unwrap();
    let bob = sdm_watch::ops::auth::hash_password("battery staple").unwrap();
    let lines = format!("alice:{alice}\nbob:{bob}\n");
    let (daemon, listen) = testkit::console::daemon(&sim, dir.path(), Some(&lines)).await;
    let url = format!("http://{listen}/status.json");
    let before = daemon.rss_kib();
    let tries = scaled(200, 20);
    let (one, bob_one) = flood(&url, tries, 1).await;
    let (many, bob_many) = flood(&url, tries, 50).await;
    // The memory of the hashes is given back once they are done.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = daemon.rss_kib();
    let peak = high_water_kib(daemon.pid());
    let checked = one.iter().chain(&many).filter(|c| **c == 401).count();
    daemon.stop().await;
    figures.push(
        Figure::new(
            "auth_flood: peak RSS over 2 x 200 concurrent wrong argon2 passwords",
            format!("{:.1} MiB (before {:.1} MiB)", mib(peak), mib(before)),
        )
        .target("<= 64 MiB", mib(peak) <= 64.0),
    );
    figures.push(
        Figure::new(
            "auth_flood: RSS a second after the flood",
            format!("{:.1} MiB", mib(after)),
        )
        .target("<= before + 8 MiB", after <= before + 8 * 1024),
    );
    let worst = bob_one.max(bob_many);
    figures.push(
        Figure::new(
            "auth_flood: a right password from another address, during the flood",
            format!(
                "{:.2} s (one address) / {:.2} s (50 addresses)",
                bob_one.as_secs_f64(),
                bob_many.as_secs_f64()
            ),
        )
        .target("< 2 s", worst < Duration::from_secs(2)),
    );
    figures.push(Figure::new(
        "auth_flood: passwords checked (401) of the tries, the rest 429/503",
        format!("{checked} of {}", one.len() + many.len()),
    ));
}
