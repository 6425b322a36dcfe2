//! The disk filling up during a cycle: the commit fails cleanly, nothing already committed
//! is lost, and once there is room again the changes are committed and alerted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sdm_watch::domain::Status;
use sdm_watch::sim::NewJob;

use testkit::{World, step};

/// An 8 MiB tmpfs, unmounted when dropped. Needs root, as the project's machines and CI are.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a small tmpfs needs root");
        SmallDisk(at.to_owned())
    }

    /// Fills what space is left; returns the filler file.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while std::io::Write::write_all(&mut file, &block).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_cycle_and_loses_nothing_committed() {
    let w = World::start().await;
    let disk = SmallDisk::mount(&w.dir.path().join("disk"));
    let first: Vec<String> = (0..5)
        .map(|_| w.sim.add_job(NewJob::new(Status::Running)))
        .collect();
    let text = w.config("", "1h", &w.ops_hook()).replace(
        &w.dir.path().join("state.db").display().to_string(),
        &disk.0.join("state.db").display().to_string(),
    );
    let parts = w.parts(&text).await;
    step(&parts).await;
    for id in &first {
        w.sim.set_status(id, Status::Done, None);
    }
    parts
        .watcher()
        .cycle()
        .await
        .expect("committed before the disk fills");

    let filler = disk.fill();
    let second: Vec<String> = (0..200)
        .map(|n| {
            w.sim.add_job(
                NewJob::new(Status::Done).name(format!("a job name to take room {n:0>100}")),
            )
        })
        .collect();
    let error = parts
        .watcher()
        .cycle()
        .await
        .expect_err("the commit cannot fit");
    assert!(error.to_string().contains("full"), "{error}");

    // What was committed before is all there, and the file is sound.
    let conn = rusqlite::Connection::open(disk.0.join("state.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let pending: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM alerts WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        pending, 5,
        "the five alerts committed before the disk filled"
    );
    let tracked: i64 = conn
        .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        tracked, 5,
        "none of the failed cycle's changes half-written"
    );
    drop(conn);

    // Room again: the next cycle commits what the failed one could not.
    std::fs::remove_file(filler).unwrap();
    parts
        .watcher()
        .cycle()
        .await
        .expect("commits once there is room");
    parts.worker.deliver_due().await.unwrap();
    let delivered = w
        .hook
        .wait_for_delivered(205, Duration::from_secs(10))
        .await;
    let mut alerted: Vec<String> = delivered
        .iter()
        .map(|h| h.json()["data"]["job"]["id"].as_str().unwrap().to_owned())
        .collect();
    alerted.sort();
    let mut expected: Vec<String> = first.into_iter().chain(second).collect();
    expected.sort();
    assert_eq!(alerted, expected, "every change alerted once, none lost");
    drop(parts);
}
