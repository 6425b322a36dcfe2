//! Whole-system benchmarks: the real `sdm-watch` binary against the project's simulator,
//! measured from outside (wall time, and peak RSS from the kernel's own accounting).
//!
//! `cargo bench --bench system` runs every scenario at full size;
//! `SDM_WATCH_BENCH_SCALE=0.01 cargo bench --bench system` runs a reduced size that only
//! checks the benchmark still works (its figures mean nothing).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sdm_watch::sdm::Status;
use sdm_watch::sim::{NewJob, Simulator};

struct Figure {
    name: &'static str,
    value: String,
    target: String,
    pass: bool,
}

/// Runs the binary to completion; its exit status, wall time and peak RSS in KiB.
// The child is reaped with wait4, which std cannot see, to read its rusage.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str], config: &Path) -> (i32, Duration, u64) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_sdm-watch"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("SDM_WATCH_LOG", "warn")
        .spawn()
        .expect("sdm-watch starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, started.elapsed(), usage.ru_maxrss as u64)
}

fn scale() -> f64 {
    std::env::var("SDM_WATCH_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// A done job with a million rows: saved and summarised in flat memory.
async fn output_rows(figures: &mut Vec<Figure>) {
    let rows = ((1_000_000.0 * scale()) as usize).max(1_000);
    let sim = Simulator::start().await.unwrap();
    let job = sim.add_job(NewJob::new(Status::Running).generated_rows(rows));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{}\"\ntoken = \"{}\"\nmax_requests_per_second = 10\n\
             [state]\npath = \"{}\"\n[http]\nlisten = \"\"\n[output]\nformat_id = 1\ndir = \"{}\"\n",
            sim.base_url(),
            sim.token(),
            dir.path().join("state.db").display(),
            dir.path().join("out").display()
        ),
    )
    .unwrap();
    let once = |config: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || run_measured(&["once"], &config))
    };
    let (code, _, _) = once(config.clone()).await.unwrap();
    assert_eq!(code, 0, "first cycle");
    sim.set_status(&job, Status::Done, None);
    let (code, elapsed, peak_kib) = once(config.clone()).await.unwrap();
    assert_eq!(code, 0, "second cycle");
    let file = dir.path().join("out").join(format!("{job}.json"));
    let bytes = std::fs::metadata(&file).unwrap().len();
    let (saved_rows, columns) = sdm_watch::output::summarise(&file).unwrap();
    assert_eq!(saved_rows as usize, rows, "every row saved");
    assert_eq!(columns, ["sku", "name", "price", "color", "size"]);
    figures.push(Figure {
        name: "output: peak RSS saving a done job's rows",
        value: format!(
            "{:.1} MiB ({rows} rows, {:.0} MiB file, in {:.2} s)",
            peak_kib as f64 / 1024.0,
            bytes as f64 / 1048576.0,
            elapsed.as_secs_f64()
        ),
        target: "< 64 MiB at 1,000,000 rows".into(),
        pass: peak_kib < 64 * 1024,
    });
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; any other argument names scenarios to run.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let mut figures = Vec::new();
    if wanted("output") {
        output_rows(&mut figures).await;
    }
    println!(
        "\nsdm-watch system benchmark (scale {}, {} cores)",
        scale(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<46} {:<52} {:<28} result",
        "figure", "measured", "target"
    );
    for figure in &figures {
        println!(
            "{:<46} {:<52} {:<28} {}",
            figure.name,
            figure.value,
            figure.target,
            if figure.pass { "pass" } else { "FAIL" }
        );
    }
    if figures.iter().any(|f| !f.pass) && scale() >= 1.0 {
        std::process::exit(1);
    }
}
