//! html-validate (npm, installed by tests/setup.sh under tests/node) over a page or an
//! e-mail, with the recommended rules: pages may reload themselves (`meta-refresh`), and
//! e-mails may also use inline styles and presentational attributes, which mail clients
//! need. A failure names every problem.

use std::path::PathBuf;

/// Which rules apply.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Page,
    Email,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Validates `html` (`what` names it in a failure).
pub fn validate(html: &str, kind: Kind, what: &str) {
    let root = root();
    let validator = root.join("tests/node/node_modules/.bin/html-validate");
    assert!(
        validator.exists(),
        "html-validate is not installed at {}: run tests/setup.sh",
        validator.display()
    );
    let config = root.join(match kind {
        Kind::Page => "tests/html-validate.page.json",
        Kind::Email => "tests/html-validate.email.json",
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("checked.html");
    std::fs::write(&file, html).expect("html written");
    let output = std::process::Command::new(&validator)
        .arg("--config")
        .arg(&config)
        .arg(&file)
        .output()
        .expect("html-validate runs");
    assert!(
        output.status.success(),
        "{what} fails html-validate:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
