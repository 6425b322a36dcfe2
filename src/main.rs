//! The `sdm-watch` command line: parses arguments, loads the configuration, sets up logging
//! and hands each command to `sdm_watch::commands`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sdm_watch::commands::{self, jobs};
use sdm_watch::config::{self, Config, LogFormat};
use sdm_watch::domain::time::OffsetDateTime;
use sdm_watch::domain::{Event, Status};
use sdm_watch::ops::{logging, signals};
use sdm_watch::store::inspect;
use sdm_watch::store::outbox::AlertState;

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
    /// One poll cycle (of each organisation), then deliver every alert that is due, then exit
    /// (1 if a cycle failed)
    Once {
        /// Only this organisation's cycle
        #[arg(long = "org", value_name = "NAME")]
        org: Option<String>,
    },
    /// Validate the configuration and print it, secrets redacted (exit 2 names a bad key); with
    /// state.url, connect and report the schema version and the leader (exit 1 if unreachable)
    Check,
    /// Tracked jobs by status, alerts pending delivery or waiting for details, dead alerts
    State {
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Only this organisation's jobs and alerts
        #[arg(long = "org", value_name = "NAME")]
        org: Option<String>,
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
    Jobs(JobsArgs),
    /// The alerts in the store: list them, show one, queue dead ones again
    Alerts(AlertsArgs),
    /// Mute matching alerts for a while (the running daemon applies it from its next cycle)
    #[command(subcommand)]
    Silence(SilenceCommand),
}

#[derive(clap::Args)]
struct JobsArgs {
    /// The organisation to ask (needed when the config has several)
    #[arg(long = "org", value_name = "NAME", global = true)]
    org: Option<String>,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(clap::Args)]
struct AlertsArgs {
    /// Only this organisation's alerts (list, retry --dead)
    #[arg(long = "org", value_name = "NAME", global = true)]
    org: Option<String>,
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// Alerts in the store, newest first
    List {
        /// Only alerts in this state
        #[arg(long, value_parser = ["pending", "delivered", "dead", "silenced"])]
        state: Option<String>,
        /// Only alerts of this channel
        #[arg(long, value_name = "NAME")]
        channel: Option<String>,
        /// Only alerts queued since this time (ISO 8601, or a date)
        #[arg(long, value_parser = jobs::parse_time, value_name = "TIME")]
        since: Option<OffsetDateTime>,
        /// At most this many
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Incidents instead: the open ones (since when, condition, channels), then the
        /// most recently resolved
        #[arg(long, conflicts_with_all = ["state", "channel", "since"])]
        incidents: bool,
    },
    /// One alert: its body, and every attempt with its time and outcome
    Show {
        /// The alert's id (msg_...)
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Queue dead alerts again: the same id, attempts from zero, delivery.max_age from now
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "dead"])))]
    Retry {
        /// The alerts' ids
        #[arg(conflicts_with = "dead")]
        ids: Vec<String>,
        /// Every dead alert (narrowed by --channel and --since)
        #[arg(long)]
        dead: bool,
        /// With --dead: only this channel's
        #[arg(long, value_name = "NAME", requires = "dead")]
        channel: Option<String>,
        /// With --dead: only alerts queued since this time
        #[arg(long, value_parser = jobs::parse_time, value_name = "TIME", requires = "dead")]
        since: Option<OffsetDateTime>,
    },
}

#[derive(Subcommand)]
enum SilenceCommand {
    /// Mute alerts that match every kind of matcher given (values of one kind are
    /// alternatives); prints the silence's id
    Add {
        /// Jobs of this project (repeat for more)
        #[arg(long = "project", value_name = "P")]
        projects: Vec<i64>,
        /// This job (repeat for more)
        #[arg(long = "job", value_name = "ID")]
        jobs: Vec<String>,
        /// Alerts of this organisation (repeat for more)
        #[arg(long = "org", value_name = "NAME")]
        orgs: Vec<String>,
        /// This event (repeat for more)
        #[arg(long = "event", value_name = "E", value_parser = [
            "done", "error", "pending", "running", "pending_reminder", "running_long", "watcher"
        ])]
        events: Vec<String>,
        /// Mute every alert (needed when no matcher is given)
        #[arg(long)]
        all: bool,
        /// For this long (e.g. 2h, 30m)
        #[arg(long = "for", value_parser = sdm_watch::domain::time::parse_duration, value_name = "D",
              required_unless_present = "until", conflicts_with = "until")]
        lasts: Option<std::time::Duration>,
        /// Until this time (ISO 8601)
        #[arg(long, value_parser = jobs::parse_time, value_name = "T")]
        until: Option<OffsetDateTime>,
        /// Why (shown by silence list)
        #[arg(long, required = true)]
        reason: String,
    },
    /// Silences in force (with --all, also those ended in the last week)
    List {
        #[arg(long)]
        all: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// End a silence now
    End {
        /// The silence's id (sil_...)
        id: String,
    },
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
        Command::Demo => commands::demo::run(signals::listen()).await.map(|()| true),
        Command::Alerts(AlertsArgs { org, command }) => {
            alerts(&config, org, command, &mut out).await
        }
        Command::Silence(command) => silence(&config, command, &mut out).await,
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
                state: state.as_deref().and_then(AlertState::parse),
                channel,
                organisation: org,
                since_ms: since.map(sdm_watch::domain::time::millis),
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
                events: events.iter().map(|event| Event::parse(event)).collect(),
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
