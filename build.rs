//! Records the commit sdm-watch is built from, for `sdm_watch_build_info{revision}`:
//! `SDM_WATCH_REVISION` when the builder sets it (a package build from a tarball), else
//! `git rev-parse` when the source is a git checkout, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SDM_WATCH_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let revision = std::env::var("SDM_WATCH_REVISION")
        .ok()
        .filter(|revision| !revision.trim().is_empty())
        .or_else(|| {
            let output = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let text = String::from_utf8(output.stdout).ok()?;
            (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SDM_WATCH_REVISION={revision}");
}
