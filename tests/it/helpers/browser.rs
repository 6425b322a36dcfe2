//! Headless Chromium, for the tests that look at pages as a browser renders them. A test
//! that needs it and cannot find it fails with the reason; it is never skipped.

use std::path::PathBuf;
use std::process::Command;

/// Chromium, or the reason it is not there.
pub fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(output) = Command::new("which").arg(name).output()
            && output.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        }
    }
    panic!(
        "this test needs a headless Chromium and none is installed: \
         apt-get install -y chromium (tests/setup.sh does)"
    );
}

/// Runs Chromium headless on `url` with `args` (`--dump-dom`, `--screenshot=PATH`), in
/// a window of 1280 x 1600 and a profile of its own.
pub fn headless(args: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--log-level=3",
            "--no-first-run",
            "--window-size=1280,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs")
}

/// A PNG's width and height, from its IHDR chunk.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// Takes a 1280 x 1600 screenshot of `url` into `path` and checks it is a PNG of that
/// size with at least `min_bytes` (a blank page compresses to far less); returns its size.
pub fn screenshot(url: &str, path: &std::path::Path, min_bytes: usize) -> usize {
    let _ = std::fs::remove_file(path);
    let shot = headless(&[&format!("--screenshot={}", path.display())], url);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(path).expect("the screenshot was written");
    assert_eq!(png_size(&png), (1280, 1600));
    assert!(
        png.len() > min_bytes,
        "a rendered page, not a blank: {} bytes",
        png.len()
    );
    png.len()
}
