//! `sdm-watch check`: the effective configuration, secrets redacted.

use std::io::Write;

use crate::config::Config;

pub fn run(config: &Config, path: &std::path::Path, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "# {}: valid", path.display())?;
    writeln!(
        out,
        "# effective configuration (file, then SDM_WATCH_* variables); secrets redacted"
    )?;
    out.write_all(config.to_redacted_toml().as_bytes())
}
