//! The `sdm-watch` command line: parses arguments, loads the configuration, sets up logging
//! and hands each command to `sdm_watch::commands`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sdm_watch::commands::{self, jobs};
use sdm_watch::config::{self, Config, LogFormat};
use sdm_watch::domain::Status;
use sdm_watch::domain::time::OffsetDateTime;
use sdm_watch::ops::{logging, signals};

#[derive(Parser)]
#[command(
    name = "sdm-watch",
    version,
    about = "Watches Akeneo Supplier Data Manager jobs and alerts by e-mail and webhook",
    after_help = "Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration.\n\
                  Log level: SDM_WATCH_LOG or RUST_LOG (default info)."
)]
struct Cli {
    /// Configuration file (TOML); SDM_WATCH_<SECTION>__<KEY> variables override it
    #[arg(
        long,
        global = true,
        env = "SDM_WATCH_CONFIG",
        default_value = config::DEFAULT_PATH,
        value_name = "PATH"
    )]
    config: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: poll, track, alert, until SIGTERM or SIGINT
    Run,
    /// One poll cycle, then deliver every alert that is due, then exit (1 if the cycle failed)
    Once,
    /// Validate the configuration and print it, secrets redacted (exit 2 names a bad key)
    Check,
    /// Tracked jobs by status, alerts pending delivery or waiting for details, dead alerts
    State {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Send a clearly marked test alert through every channel, or one
    TestAlert {
        /// Only the channel with this name
        #[arg(long, value_name = "NAME")]
        channel: Option<String>,
    },
    /// Run the whole daemon against a built-in simulated SDM API; no config, no network
    Demo,
    /// Ask the running daemon's /healthz (or /readyz) on http.listen; exit 0 if it answers 200
    Healthcheck {
        /// Check /readyz (a poll cycle succeeded recently) instead of /healthz
        #[arg(long)]
        ready: bool,
    },
    /// Query the SDM jobs API directly
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List jobs (every page) as a table, or as JSON
    List {
        /// Only jobs with this status
        #[arg(long, value_parser = ["running", "done", "error", "pending"])]
        status: Option<String>,
        /// Only jobs of this project id
        #[arg(long)]
        project: Option<i64>,
        /// Only jobs created after this time (ISO 8601, e.g. 2026-11-28T10:00:00Z, or a date)
        #[arg(long, value_parser = jobs::parse_time, value_name = "TIME")]
        created_after: Option<OffsetDateTime>,
        /// Only jobs created before this time (ISO 8601, or a date)
        #[arg(long, value_parser = jobs::parse_time, value_name = "TIME")]
        created_before: Option<OffsetDateTime>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show one job's status, step and error message
    Show {
        /// The job's id (UUID)
        id: String,
        /// Print the API's JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a done job's output rows as JSON, or as CSV
    Data {
        /// The job's id (UUID)
        id: String,
        /// The output format id configured for the job's project
        format_id: u32,
        /// CSV with a header of every column any row has
        #[arg(long)]
        csv: bool,
    },
}

impl From<JobsCommand> for jobs::Request {
    fn from(command: JobsCommand) -> Self {
        match command {
            JobsCommand::List {
                status,
                project,
                created_after,
                created_before,
                json,
            } => jobs::Request::List {
                status: status.as_deref().map(Status::parse),
                project,
                created_after,
                created_before,
                json,
            },
            JobsCommand::Show { id, json } => jobs::Request::Show { id, json },
            JobsCommand::Data { id, format_id, csv } => jobs::Request::Data { id, format_id, csv },
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Demo = cli.command {
        logging::init(LogFormat::Text);
        return exit(commands::demo::run(signals::listen()).await.map(|()| true));
    }
    let config = match Config::load(&cli.config) {
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
        Command::Once => commands::once::run(&config, &mut out).await.map(|()| true),
        Command::Check => commands::check::run(&config, path, &mut out)
            .map(|()| true)
            .map_err(Into::into),
        Command::State { json } => commands::state::run(&config, json, &mut out)
            .await
            .map(|()| true),
        Command::TestAlert { channel } => {
            commands::test_alert::run(&config, channel.as_deref(), &mut out).await
        }
        Command::Healthcheck { ready } => commands::healthcheck::run(&config, ready, &mut out)
            .await
            .map(|()| true),
        Command::Jobs(command) => commands::jobs::run(&config, command.into(), &mut out)
            .await
            .map(|()| true),
        Command::Demo => commands::demo::run(signals::listen()).await.map(|()| true),
    };
    out.flush()?;
    all_ok
}

fn exit(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("sdm-watch: {error:#}");
            ExitCode::FAILURE
        }
    }
}
