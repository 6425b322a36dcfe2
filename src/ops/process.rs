//! What the process sets up for itself before it serves anyone: large allocations given
//! back to the system when freed, and the open-files limit raised to what it may be.

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
