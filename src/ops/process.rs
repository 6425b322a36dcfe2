//! What the process sets up for itself before it serves anyone: large allocations given
//! back to the system when freed, and the open-files limit raised to what it may be; and
//! what it says of itself on `/metrics`: the standard `process_*` metrics, read from
//! `/proc/self` at each scrape.

use std::fmt::Write as _;

/// Allocations from this size up are mapped on their own and unmapped when freed: an
/// argon2 check takes a 19 MiB block, and glibc would otherwise keep such blocks in its
/// heaps (its threshold rises with every large block freed), so that a burst of sign-ins
/// left the process hundreds of MiB larger for good.
const MAP_FROM_BYTES: i32 = 1 << 20;

/// Sets both; call once, at start, before other threads allocate.
pub fn prepare() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter of glibc's allocator; a fixed
    // threshold also turns off its dynamic adjustment, which is the point.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MAP_FROM_BYTES);
    }
    raise_open_files();
}

/// Raises the soft limit on open files to the hard one (systemd's default soft limit is
/// 1024): listener connections beyond their cap are closed at once, but what the daemon
/// itself opens (the store, the API, receivers) must never run short.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct passed, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The soft limit on open files now (`None` if it cannot be read or is unlimited).
pub fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as above.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (read && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// The standard `process_*` metrics in Prometheus' text format (as its client libraries
/// export them): CPU seconds, resident and virtual memory, open and maximum file
/// descriptors, start time. A value that cannot be read (not Linux, `/proc` hidden) is left
/// out, never made up.
pub fn exposition() -> String {
    let mut text = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(value) = value {
            let _ = write!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        }
    };
    let stat = Stat::read();
    metric(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        stat.as_ref().map(|stat| stat.cpu_seconds),
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        stat.as_ref().map(|stat| stat.resident_bytes),
    );
    metric(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        stat.as_ref().map(|stat| stat.virtual_bytes),
    );
    metric(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        stat.as_ref().and_then(|stat| stat.start_time),
    );
    let open = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| dir.count() as f64);
    metric(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        open,
    );
    metric(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        open_files_limit().map(|limit| limit as f64),
    );
    text
}

/// What `/proc/self/stat` (and the boot time in `/proc/stat`) say of this process.
struct Stat {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time: Option<f64>,
}

impl Stat {
    fn read() -> Option<Stat> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: fields are
        // counted after its closing one, from field 3 (the state) on.
        let fields: Vec<&str> = text
            .get(text.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        let field = |n: usize| fields.get(n.checked_sub(3)?)?.parse::<f64>().ok();
        // SAFETY: sysconf only reads a system constant.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if ticks <= 0 || page <= 0 {
            return None;
        }
        let (ticks, page) = (ticks as f64, page as f64);
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|stat| {
            stat.lines()
                .find_map(|line| line.strip_prefix("btime "))
                .and_then(|seconds| seconds.trim().parse::<f64>().ok())
        });
        Some(Stat {
            cpu_seconds: (field(14)? + field(15)?) / ticks,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            start_time: boot
                .zip(field(22))
                .map(|(boot, start)| boot + start / ticks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_metrics_are_read_from_proc() {
        let text = exposition();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .parse()
                .unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1_000_000.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} vs {now}"
        );
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
    }
}
