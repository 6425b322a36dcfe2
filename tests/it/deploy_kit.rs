//! What deploying sdm-watch needs of the binary itself (issue 24): shell completions and a
//! manual page made from the command line's own definition, and files that are private
//! whatever the umask it was started with.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Simulator};
use testkit::cli::binary;
use testkit::config::config_text;

/// The binary's output for `args` (no config needed); panics unless it exits 0.
fn run(args: &[&str]) -> String {
    let output = Command::new(binary())
        .args(args)
        .env_remove("SDM_WATCH_CONFIG")
        .output()
        .expect("sdm-watch runs");
    assert!(
        output.status.success(),
        "sdm-watch {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

const SUBCOMMANDS: [&str; 8] = [
    "run",
    "once",
    "check",
    "state",
    "jobs",
    "alerts",
    "silence",
    "completions",
];

#[test]
fn completions_for_each_shell_know_every_subcommand_and_bash_s_parse() {
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sdm-watch.bash");
    std::fs::write(&path, run(&["completions", "bash"])).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // Loaded into bash, it completes the subcommands.
    let complete = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(sdm-watch al); COMP_CWORD=1; _sdm__watch sdm-watch al sdm-watch; echo \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&complete.stdout).trim(), "alerts");

    let refused = Command::new(binary())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn the_manual_page_is_roff_with_a_section_per_subcommand() {
    let page = run(&["man"]);
    assert!(page.contains(".TH sdm-watch 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!(".SH \"SDM-WATCH {}\"", sub.to_uppercase())),
            "no section for {sub}"
        );
    }
    assert!(
        page.contains("/etc/sdm\\-watch/config.toml"),
        "the default config path"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Started with umask 022 (as by hand), sdm-watch still creates its state, the state's
/// directory, the output directory and saved rows for its user alone.
#[tokio::test]
async fn files_it_creates_are_private_whatever_the_umask() {
    let sim = Simulator::start().await.unwrap();
    let job = sim.add_job(NewJob::new(Status::Running).generated_rows(3));
    let dir = tempfile::tempdir().unwrap();
    let (state, output) = (dir.path().join("state"), dir.path().join("rows"));
    let text = config_text(
        &sim,
        "",
        &format!(
            "[state]\npath = \"{}\"\n[output]\nformat_id = 3\ndir = \"{}\"\n",
            state.join("state.db").display(),
            output.display()
        ),
    );
    let config = dir.path().join("config.toml");
    std::fs::write(&config, text).unwrap();
    // The simulator answers on this test's runtime: the command is awaited, not waited on.
    let once = async || {
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 022 && exec '{}' --config '{}' once",
                binary().display(),
                config.display()
            ))
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    once().await;
    sim.set_status(&job, Status::Done, None);
    once().await;
    assert_eq!(mode(&state), 0o700, "the state's directory");
    assert_eq!(mode(&state.join("state.db")), 0o600, "the state");
    for journal in ["state.db-wal", "state.db-shm"] {
        let path = state.join(journal);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{journal}");
        }
    }
    assert_eq!(mode(&output), 0o700, "the output directory");
    let saved = output.join(format!("{job}.json"));
    assert_eq!(mode(&saved), 0o600, "saved rows");
}
