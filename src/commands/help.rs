//! `sdm-watch completions SHELL`, `sdm-watch man` and `sdm-watch config schema`: the
//! command line described for shells and for `man`, and the config file for editors,
//! each generated from its own definition, so they never drift from it.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use super::cli::Cli;

/// Writes the completion script of `shell` (`bash`, `zsh`, `fish`).
pub fn completions(shell: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let shell = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => anyhow::bail!("no completions for shell {other:?} (bash, zsh, fish)"),
    };
    // Into memory first: the generator panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sdm-watch", &mut script);
    out.write_all(&script)?;
    Ok(())
}

/// Writes the JSON Schema of the config file.
pub fn schema(out: &mut impl Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &crate::config::config_schema())?;
    writeln!(out)?;
    Ok(())
}

/// Writes the manual page, sdm-watch(1), with a section per subcommand.
pub fn man(out: &mut impl Write) -> anyhow::Result<()> {
    let command = Cli::command();
    clap_mangen::Man::new(command.clone()).render(out)?;
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SH \"SDM-WATCH {}\"", name.to_uppercase())?;
        let page = clap_mangen::Man::new(sub.clone());
        page.render_description_section(out)?;
        page.render_options_section(out)?;
        if sub.has_subcommands() {
            page.render_subcommands_section(out)?;
        }
    }
    Ok(())
}
