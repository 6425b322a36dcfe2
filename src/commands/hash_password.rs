//! `sdm-watch hash-password`: an argon2id hash for a line of `[http] users_file`. The
//! password is asked twice on the terminal without echo, or read from stdin's first line
//! with `--stdin`; it is never printed, only its hash.

use std::io::{BufRead, IsTerminal, Write};

use super::UsageError;
use super::login::read_without_echo;

pub fn run(from_stdin: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "stdin is not a terminal: pipe the password with --stdin".into(),
            )
            .into());
        }
        eprint!("Password: ");
        let first = read_without_echo()?;
        eprint!("\nAgain: ");
        let again = read_without_echo()?;
        eprintln!();
        if first != again {
            return Err(UsageError("the two passwords differ; nothing printed".into()).into());
        }
        first
    };
    if password.is_empty() {
        return Err(UsageError("the password is empty; nothing printed".into()).into());
    }
    let hash = crate::ops::auth::hash_password(&password)?;
    writeln!(out, "{hash}")?;
    Ok(())
}
