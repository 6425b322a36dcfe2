//! The command line's shape: every command, argument and its help, as clap parses them.
//! `main.rs` dispatches what it parsed; `completions` and `man` print it for shells and
//! `man`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::jobs;
use crate::config;
use crate::domain::Status;
use crate::domain::time::OffsetDateTime;

#[derive(Parser)]
#[command(
    name = "sdm-watch",
    version,
    about = "Watches Akeneo Supplier Data Manager jobs and alerts by e-mail and webhook",
    after_help = "Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration.\n\
                  Log level: SDM_WATCH_LOG or RUST_LOG (default info)."
)]
pub struct Cli {
    /// Configuration file (TOML); SDM_WATCH_<SECTION>__<KEY> variables override it
    #[arg(
        long,
        global = true,
        env = "SDM_WATCH_CONFIG",
        default_value = config::DEFAULT_PATH,
        value_name = "PATH"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    Demo(DemoArgs),
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
    /// What operators did (silences added and ended, alerts retried), newest first: who,
    /// when, from where, what, and how it ended
    Audit {
        /// Only what was done since this time (ISO 8601, or a date)
        #[arg(long, value_parser = jobs::parse_time, value_name = "TIME")]
        since: Option<OffsetDateTime>,
        /// At most this many
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Mute matching alerts for a while (the running daemon applies it from its next cycle)
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Print a shell completion script (bash: `sdm-watch completions bash >
    /// /etc/bash_completion.d/sdm-watch`)
    Completions {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Print the manual page (roff; `sdm-watch man | man -l -`)
    Man,
    /// Print an argon2id hash of a password for a line `name:HASH` of http.users_file
    /// (asked twice without echo, or read from stdin with --stdin)
    HashPassword {
        /// Read the password from stdin's first line instead of asking
        #[arg(long)]
        stdin: bool,
    },
    /// How the period went: per project, jobs by final status, error rate, durations
    /// (median, p95, max); the most frequent errors; the slowest jobs; jobs waiting now
    Report {
        /// The period: jobs created this long ago or later (e.g. 7d, 24h, 365d)
        #[arg(long, default_value = "7d", value_parser = crate::domain::time::parse_duration, value_name = "D")]
        since: std::time::Duration,
        /// Only this project's jobs
        #[arg(long, value_name = "P")]
        project: Option<i64>,
        /// Only this organisation's jobs
        #[arg(long = "org", value_name = "NAME")]
        org: Option<String>,
        /// Print the whole report as JSON
        #[arg(long, conflicts_with_all = ["csv", "csv_raw"])]
        json: bool,
        /// Print the per-project lines as CSV for a spreadsheet (a cell that would run as a
        /// formula is prefixed with ')
        #[arg(long)]
        csv: bool,
        /// Print the per-project lines as CSV with every value exactly as it is
        #[arg(long, conflicts_with = "csv")]
        csv_raw: bool,
    },
    /// About the configuration file itself
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Get an API token with an SDM account's e-mail and password, and write it (mode 0600)
    /// to api.token_file (or the organisation's, or --out); the token is never printed
    Login(super::login::Login),
}

#[derive(clap::Args)]
pub struct JobsArgs {
    /// The organisation to ask (needed when the config has several)
    #[arg(long = "org", value_name = "NAME", global = true)]
    pub org: Option<String>,
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(clap::Args)]
pub struct AlertsArgs {
    /// Only this organisation's alerts (list, retry --dead)
    #[arg(long = "org", value_name = "NAME", global = true)]
    pub org: Option<String>,
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Alerts in the store, newest first
    List {
        /// Only alerts in this state
        #[arg(long, value_enum)]
        state: Option<StateArg>,
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
pub enum SilenceCommand {
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
        #[arg(long = "event", value_name = "E", value_enum)]
        events: Vec<EventArg>,
        /// Mute every alert (needed when no matcher is given)
        #[arg(long)]
        all: bool,
        /// For this long (e.g. 2h, 30m)
        #[arg(long = "for", value_parser = crate::domain::time::parse_duration, value_name = "D",
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
pub enum ConfigCommand {
    /// Print a JSON Schema of the config file (for editors and check-jsonschema; TOML
    /// read as JSON)
    Schema,
}

#[derive(Subcommand)]
pub enum JobsCommand {
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
        /// CSV with a header of every column any row has, for a spreadsheet (a cell that
        /// would run as a formula is prefixed with ')
        #[arg(long)]
        csv: bool,
        /// CSV with every value exactly as it is, for programs
        #[arg(long, conflicts_with = "csv")]
        csv_raw: bool,
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
            JobsCommand::Data {
                id,
                format_id,
                csv,
                csv_raw,
            } => jobs::Request::Data {
                id,
                format_id,
                csv: match (csv, csv_raw) {
                    (_, true) => Some(crate::rows::Cells::Exact),
                    (true, false) => Some(crate::rows::Cells::ForPeople),
                    (false, false) => None,
                },
            },
        }
    }
}

/// `demo`'s options: by default the whole daemon, the simulated API and a receiver in one
/// process; with `--api` and `--receiver`, only the simulated API and the receiver, at
/// fixed addresses, for a daemon run separately (a packaged service, say).
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Serve only the simulated SDM API here (http://ADDR/api/v1/, token
    /// sim-token-0123456789abcdef), with its scripted jobs; no daemon
    #[arg(long, value_name = "ADDR", requires = "receiver")]
    pub api: Option<std::net::SocketAddr>,
    /// With --api: a webhook receiver here that prints every alert it gets
    #[arg(long, value_name = "ADDR", requires = "api")]
    pub receiver: Option<std::net::SocketAddr>,
}

/// An alert's state as `alerts list --state` takes it, parsed once by clap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    Pending,
    Delivered,
    Dead,
    Silenced,
}

impl From<StateArg> for crate::store::outbox::AlertState {
    fn from(state: StateArg) -> Self {
        use crate::store::outbox::AlertState;
        match state {
            StateArg::Pending => AlertState::Pending,
            StateArg::Delivered => AlertState::Delivered,
            StateArg::Dead => AlertState::Dead,
            StateArg::Silenced => AlertState::Silenced,
        }
    }
}

/// An event a silence may match, as `silence add --event` takes it, parsed once by clap:
/// a status entered or a reminder, never a text a later parse could read otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum EventArg {
    Done,
    Error,
    Pending,
    Running,
    PendingReminder,
    RunningLong,
    Watcher,
}

impl From<EventArg> for crate::domain::Event {
    fn from(event: EventArg) -> Self {
        use crate::domain::Event;
        match event {
            EventArg::Done => Event::Entered(Status::Done),
            EventArg::Error => Event::Entered(Status::Error),
            EventArg::Pending => Event::Entered(Status::Pending),
            EventArg::Running => Event::Entered(Status::Running),
            EventArg::PendingReminder => Event::PendingReminder,
            EventArg::RunningLong => Event::RunningLong,
            EventArg::Watcher => Event::Watcher,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    /// What `--event` accepts is spelt as the store and the payloads spell events.
    #[test]
    fn event_arguments_are_spelt_as_events_are() {
        for arg in EventArg::value_variants() {
            let spelt = arg.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(crate::domain::Event::from(*arg).as_str(), spelt);
        }
        for arg in StateArg::value_variants() {
            let spelt = arg.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(crate::store::outbox::AlertState::from(*arg).as_str(), spelt);
        }
    }
}
