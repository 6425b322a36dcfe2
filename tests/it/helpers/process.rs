//! A child process as the kernel accounts for it: reaped with its exit status, its peak
//! RSS and its CPU time, read from `/proc`.

use std::time::{Duration, Instant};

/// Follows a process's peak RSS, `VmHWM` in /proc/PID/status, until it exits; the thread
/// returns the peak in KiB. (Not wait4's `ru_maxrss`: std starts a child with vfork from
/// this process, and the kernel folds that pre-exec memory into the child's maxrss.
/// `VmHWM` is the high-water mark of the child's own address space after exec; it is read
/// every 2 ms.)
pub fn follow_peak(pid: u32) -> std::thread::JoinHandle<u64> {
    let path = format!("/proc/{pid}/status");
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Some(kib) = status_kib(&path, "VmHWM:") {
            // A zombie has no VmHWM line: the loop ends when the child exits.
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(2));
        }
        peak
    })
}

/// The peak RSS of `pid` so far (`VmHWM`), in KiB (0 if it is gone).
pub fn high_water_kib(pid: u32) -> u64 {
    status_kib(&format!("/proc/{pid}/status"), "VmHWM:").unwrap_or(0)
}

/// The current RSS of `pid`, in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(&format!("/proc/{pid}/status"), "VmRSS:").unwrap_or(0)
}

fn status_kib(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok().and_then(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    })
}

/// CPU time (user + system) `pid` used so far.
pub fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name: utime is the 14th of the line, stime the 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields
        .get(11..13)
        .map(|both| both.iter().filter_map(|t| t.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

/// Waits (with wait4, so that std's handle must not wait too) for our child `pid` to
/// exit, at most `timeout`; its exit status (-1 if a signal ended it), or `None` if it
/// is still running.
pub fn reap(pid: u32, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our own child, not yet waited for; the pointer is valid.
        let waited = unsafe {
            libc::wait4(
                pid as libc::pid_t,
                &mut status,
                libc::WNOHANG,
                std::ptr::null_mut(),
            )
        };
        if waited == pid as libc::pid_t {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            });
        }
        if waited < 0 || Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends signal `name` (`TERM`, `HUP`, `KILL`, `STOP`, ...) to `pid`.
pub fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{name} {pid} failed");
}
