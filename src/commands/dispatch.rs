//! The `sdm-watch` command line: parses arguments, sets the process up, loads the
//! configuration and logging, and hands each command to its module. `main.rs` only calls
//! [`main`]: compiled here, once, rather than again in the binary, where every command's
//! async code awaited from `main` would be compiled a second time (BENCHMARKS.md,
//! "Issue 33": the binary's 30 s at the end of a release build).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::commands;
use crate::commands::cli::{
    AlertsArgs, AlertsCommand, Cli, Command, ConfigCommand, JobsArgs, SilenceCommand,
};
use crate::config::{ApiToken, Config, LogFormat};
use crate::domain::Event;
use crate::ops::{logging, signals};
use crate::store::inspect;
use crate::store::outbox::AlertState;
use clap::Parser;

/// How long blocking work still running when a command ends (a read stuck on a hung mount,
/// say) may delay the exit.
const BLOCKING_WORK_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The whole of `sdm-watch`: what the binary runs.
pub fn main() -> ExitCode {
    // The runtime's threads: one per core, or TOKIO_WORKER_THREADS.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return exit(Err(anyhow::anyhow!(
                "cannot start the async runtime: {error}"
            )));
        }
    };
    let code = runtime.block_on(command());
    // Dropping the runtime would wait for every blocking task, however stuck.
    runtime.shutdown_timeout(BLOCKING_WORK_AT_EXIT);
    code
}

async fn command() -> ExitCode {
    // Whatever the umask it was started with, what sdm-watch creates (the state and its
    // journal, saved rows, spill files, a token) is its user's alone.
    // SAFETY: umask only sets this process's file mode creation mask; it cannot fail.
    unsafe { libc::umask(0o077) };
    crate::ops::process::prepare();
    let cli = Cli::parse();
    // Commands that need no configuration.
    let mut out = std::io::stdout().lock();
    let without_config = match &cli.command {
        Command::Completions { shell } => Some(commands::help::completions(shell, &mut out)),
        Command::Man => Some(commands::help::man(&mut out)),
        Command::HashPassword { stdin } => Some(commands::hash_password::run(*stdin, &mut out)),
        Command::Config(ConfigCommand::Schema) => Some(commands::help::schema(&mut out)),
        _ => None,
    };
    if let Some(done) = without_config {
        return exit(done.and_then(|()| Ok(out.flush()?)).map(|()| true));
    }
    drop(out);
    if let Command::Login(login) = cli.command {
        // Before the config is loaded: the token it names may not exist yet.
        let mut stdout = std::io::stdout().lock();
        let done = commands::login::run(&cli.config, login, &mut stdout).await;
        return exit(done.map(|()| true));
    }
    if let Command::Demo(args) = cli.command {
        logging::init(LogFormat::Text);
        return exit(
            commands::demo::run(args, signals::listen())
                .await
                .map(|()| true),
        );
    }
    // Only the commands that call the SDM API need its token: the others work from a shell
    // where the token is the service's alone (a systemd credential, a file only root reads).
    let need = match cli.command {
        Command::Run | Command::Once { .. } | Command::Jobs(_) => ApiToken::Required,
        _ => ApiToken::IfReadable,
    };
    let config = match Config::load_for(&cli.config, need) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sdm-watch: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log.format);
    exit(dispatch(cli.command, config, &cli.config).await)
}

/// Runs `command`; `Ok(false)` is a failure already reported on stdout.
async fn dispatch(command: Command, config: Config, path: &Path) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    let all_ok = match command {
        Command::Run => commands::run::run(config, path).await.map(|()| true),
        Command::Once { org } => commands::once::run(&config, org.as_deref(), &mut out)
            .await
            .map(|()| true),
        Command::Check => commands::check::run(&config, path, &mut out)
            .await
            .map(|()| true),
        Command::State { json, org } => {
            commands::state::run(&config, org.as_deref(), json, &mut out)
                .await
                .map(|()| true)
        }
        Command::TestAlert { channel } => {
            commands::test_alert::run(&config, channel.as_deref(), &mut out).await
        }
        Command::Healthcheck { ready } => commands::healthcheck::run(&config, ready, &mut out)
            .await
            .map(|()| true),
        Command::Jobs(JobsArgs { org, command }) => {
            commands::jobs::run(&config, org.as_deref(), command.into(), &mut out)
                .await
                .map(|()| true)
        }
        Command::Alerts(AlertsArgs { org, command }) => {
            alerts(&config, org, command, &mut out).await
        }
        Command::Silence(command) => silence(&config, command, &mut out).await,
        Command::Audit { since, limit, json } => {
            commands::audit::run(&config, since, limit, json, &mut out)
                .await
                .map(|()| true)
        }
        Command::Report {
            since,
            project,
            org,
            json,
            csv,
            csv_raw,
        } => {
            use crate::rows::Cells;
            use commands::report::{Format, Request};
            commands::chosen_orgs(&config, org.as_deref())?;
            let format = match (json, csv, csv_raw) {
                (true, _, _) => Format::Json,
                (_, _, true) => Format::Csv(Cells::Exact),
                (_, true, _) => Format::Csv(Cells::ForPeople),
                _ => Format::Table,
            };
            let request = Request {
                since,
                project,
                org,
                format,
            };
            commands::report::run(&config, request, &mut out)
                .await
                .map(|()| true)
        }
        Command::Completions { .. }
        | Command::Demo(_)
        | Command::Man
        | Command::HashPassword { .. }
        | Command::Config(_)
        | Command::Login(_) => {
            unreachable!("handled before the config")
        }
    };
    out.flush()?;
    all_ok
}

async fn alerts(
    config: &Config,
    org: Option<String>,
    command: AlertsCommand,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    use commands::alerts::{self, Retry};
    commands::chosen_orgs(config, org.as_deref())?;
    match command {
        AlertsCommand::List {
            limit,
            json,
            incidents: true,
            ..
        } => alerts::incidents(config, org.as_deref(), limit, json, out)
            .await
            .map(|()| true),
        AlertsCommand::List {
            state,
            channel,
            since,
            limit,
            json,
            incidents: false,
        } => {
            let query = inspect::Query {
                state: state.map(AlertState::from),
                channel,
                organisation: org,
                since_ms: since.map(crate::domain::time::millis),
                limit,
            };
            alerts::list(config, query, json, out).await.map(|()| true)
        }
        AlertsCommand::Show { id, json } => {
            alerts::show(config, &id, json, out).await.map(|()| true)
        }
        AlertsCommand::Retry {
            ids,
            dead,
            channel,
            since,
        } => {
            let which = if dead {
                Retry::Dead {
                    channel,
                    since,
                    organisation: org,
                }
            } else {
                Retry::Ids(ids)
            };
            alerts::retry(config, which, out).await
        }
    }
}

async fn silence(
    config: &Config,
    command: SilenceCommand,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    use commands::silence::{self, Lasts, NewSilence};
    match command {
        SilenceCommand::Add {
            projects,
            jobs,
            orgs,
            events,
            all,
            lasts,
            until,
            reason,
        } => {
            for org in &orgs {
                commands::chosen_orgs(config, Some(org))?;
            }
            let lasts = match (lasts, until) {
                (Some(duration), _) => Lasts::For(duration),
                (None, Some(until)) => Lasts::Until(until),
                (None, None) => unreachable!("clap requires --for or --until"),
            };
            let new = NewSilence {
                projects,
                jobs,
                organisations: orgs,
                events: events.into_iter().map(Event::from).collect(),
                all,
                lasts,
                reason,
            };
            silence::add(config, new, out).await.map(|()| true)
        }
        SilenceCommand::List { all, json } => {
            silence::list(config, all, json, out).await.map(|()| true)
        }
        SilenceCommand::End { id } => silence::end(config, &id, out).await.map(|()| true),
    }
}

fn exit(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) if error.is::<commands::UsageError>() => {
            eprintln!("sdm-watch: {error:#}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("sdm-watch: {error:#}");
            ExitCode::FAILURE
        }
    }
}
