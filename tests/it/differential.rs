//! The differential test of detection: random API histories drive the simulator cycle by
//! cycle, and the alerts the daemon queues must equal, job by job and channel by channel
//! and in order, those of a naive reference poller that sees every job at every cycle.
//!
//! A history is jobs before the first cycle (old ones, from before `poll.lookback`, and
//! recent ones), then, between cycles and between the pages of a cycle's listings, jobs
//! created (with creation dates up to 10 minutes off and some visible up to 5 minutes
//! late), finishing, failing, waiting, run again, deleted; statuses the daemon does not
//! know; a server that caps the page size below `api.page_size`; article-shaped rows
//! (no `project`); transient faults on every endpoint; a job whose detail always fails.
//! The simulator's clock runs behind the real one and moves 60 s per cycle.
//!
//! The reference lists every job after each cycle, at any cost. The generator keeps to
//! what SPEC.md guarantees, and so leaves out only what it permits: a job created before
//! the previous cycle that goes from one settled status to another without being running
//! or pending when a cycle looks. A job changed between the pages of a cycle is left
//! alone until the next cycle has read it (a poller sees a change made during its read
//! either then or at the next cycle; both tell the same story). Mid-read changes come one
//! per request, so a listing that shrank shows it in its `count`.
//!
//! A history runs in one to three organisations sharing the process and the store, the
//! same history in each (the same job ids): each organisation's alerts must equal its
//! reference's and name it, so an alert that crossed organisations, or bookkeeping one
//! organisation took from another, shows. Their cycles run at once or one after another.
//!
//! Channel `all` asks for resolutions (`send_resolved`): the reference opens an incident
//! with each `error` or `pending` alert and tells its end (`resolved:<condition>`) at the
//! change that ends it, before that change's own alert, so the story of every job on
//! `all` includes its incidents' ends, in order.
//!
//! Before a quarter of the cycles the daemon restarts (the store opened again, new
//! watchers): the alerts and resolutions after it must be the ones a process that never
//! stopped would have sent, none repeated and none lost.
//!
//! In a share of histories `[state] keep` is shorter than the history (`keep = "1d"`, a
//! lookback of 4 days, cycles 8 hours apart on the simulator's clock, which the watchers'
//! clock follows): settled jobs are forgotten while the reference remembers everything, and
//! listings show them again. A forgotten job must never alert as new; one run again alerts
//! as the reference's does, its previous status (which the store forgot) possibly unknown.
//!
//! `SDM_WATCH_DIFF_CASES` sets the histories per test (1000 each, two tests);
//! `SDM_WATCH_DIFF_SEED` picks other ones. A failing history is shrunk and printed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestError};
use sdm_watch::config::Config;
use sdm_watch::domain::Status;
use sdm_watch::domain::time::parse_api_time;
use sdm_watch::poll::{WatchSetup, Watcher};
use sdm_watch::sdm::SdmClient;
use sdm_watch::sim::{
    Fault, Jobs, NewJob, Order, RecordedRequest, SimJob, SimOrganisation, Simulator, sim_time,
};
use sdm_watch::store::{Store, held};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::seeded::{self, env_number};

const INTERVAL: time::Duration = time::Duration::seconds(60);
const LOOKBACK_MINUTES: i64 = 60;
/// With `keep`: cycles this far apart, a lookback over every initial job, a day kept.
const KEEP_INTERVAL: time::Duration = time::Duration::hours(8);
const KEEP_LOOKBACK_MINUTES: i64 = 4 * 24 * 60;
const KEEP: time::Duration = time::Duration::days(1);
/// A job created at most this long before the previous cycle is re-listed by the daemon
/// whatever its status, so the generator may move it between settled statuses.
const YOUNG: time::Duration = time::Duration::minutes(5);

#[derive(Clone, Debug)]
struct Setup {
    page_size: u32,
    /// The server's own page size limit, below `page_size` when set.
    server_cap: Option<usize>,
    oldest_first: bool,
    /// List rows without `project`, as the article's example.
    article_rows: bool,
    alert_existing: bool,
    /// `poll.projects = [1]`.
    poll_projects: bool,
    /// A webhook with `projects = [2]`.
    channel_projects: bool,
    notify_running: bool,
    /// Transient faults on this share of requests (percent).
    fault_percent: u8,
    /// An initial job whose detail always answers 500.
    broken_detail: Option<Index>,
    /// Every answer sent in another shape the API may use (see [`drift_hook`]).
    drift: Option<Drift>,
    /// How many organisations share the process and the store, each with the same
    /// history (and so the same job ids).
    organisations: usize,
    /// Their cycles run at once; else one after another, so that what one writes is
    /// there when the next begins.
    concurrent: bool,
    /// `[state] keep` shorter than the history (see the module's comment).
    keep: bool,
}

impl Setup {
    fn interval(&self) -> time::Duration {
        if self.keep { KEEP_INTERVAL } else { INTERVAL }
    }

    fn lookback_minutes(&self) -> i64 {
        if self.keep {
            KEEP_LOOKBACK_MINUTES
        } else {
            LOOKBACK_MINUTES
        }
    }
}

/// How the simulator's answers are reshaped: the same data in every form SPEC's "Reading
/// the API tolerantly" allows, picked at random per answer and per field.
#[derive(Clone, Debug)]
struct Drift {
    seed: u64,
    /// `count` left out of listings: they are read by `next` alone. A shrink while paging
    /// then shows only as a 404 past the end, so such histories change nothing mid-read.
    count_absent: bool,
    /// Listings also carry rows without a usable `id` or `status`, which must be skipped.
    bad_rows: bool,
}

#[derive(Clone, Debug)]
struct InitialJob {
    /// Created 2 hours to 3 days before the first cycle, else 1 to 45 minutes.
    old: bool,
    minutes: u16,
    status: Status,
    project: u8,
    skew_seconds: i16,
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        status: Status,
        project: u8,
        skew_seconds: i16,
        late_seconds: u16,
    },
    Change {
        job: Index,
        to: Status,
    },
    /// A running or pending job finishes (or fails, or is cancelled).
    Finish {
        job: Index,
        to: Status,
    },
    /// A settled job is run again.
    Rerun {
        job: Index,
        to: Status,
    },
    Delete {
        job: Index,
    },
    /// A running or pending job dated on the edge of the next cycle's listing window
    /// (where the active listings end and the listing of new jobs starts), a microsecond
    /// before, on, or after it: each must be read by one listing or the other.
    CreateAtEdge {
        status: Status,
        offset_us: i8,
    },
}

/// What happens before one cycle, and between the requests of it (after the n-th).
#[derive(Clone, Debug)]
struct Gap {
    ops: Vec<Op>,
    mid: Vec<(u8, Op)>,
    /// The daemon restarts before the cycle: the store opened again and new watchers,
    /// knowing only what the store kept.
    restart: bool,
}

#[derive(Clone, Debug)]
struct History {
    setup: Setup,
    initial: Vec<InitialJob>,
    gaps: Vec<Gap>,
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        3 => Just(Status::Running),
        2 => Just(Status::Pending),
        3 => Just(Status::Done),
        2 => Just(Status::Error),
        1 => Just(Status::Other("cancelled".into())),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (status(), 0u8..4, -600i16..=600, prop_oneof![3 => Just(0u16), 1 => 1u16..=300])
            .prop_map(|(status, project, skew_seconds, late_seconds)| Op::Create {
                status,
                project,
                skew_seconds,
                late_seconds,
            }),
        2 => (any::<Index>(), status()).prop_map(|(job, to)| Op::Change { job, to }),
        3 => (any::<Index>(), settled_status()).prop_map(|(job, to)| Op::Finish { job, to }),
        3 => (any::<Index>(), active_status()).prop_map(|(job, to)| Op::Rerun { job, to }),
        1 => any::<Index>().prop_map(|job| Op::Delete { job }),
        1 => (active_status(), -1i8..=1).prop_map(|(status, offset_us)| Op::CreateAtEdge { status, offset_us }),
    ]
}

fn settled_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        3 => Just(Status::Done),
        2 => Just(Status::Error),
        1 => Just(Status::Other("cancelled".into())),
    ]
}

fn active_status() -> impl Strategy<Value = Status> {
    prop_oneof![3 => Just(Status::Running), 1 => Just(Status::Pending)]
}

/// A change between the pages of a listing: mostly jobs leaving or entering the active
/// listings, which shifts them.
fn mid_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => op(),
        2 => (any::<Index>(), settled_status()).prop_map(|(job, to)| Op::Finish { job, to }),
    ]
}

fn history() -> impl Strategy<Value = History> {
    let setup = (
        (
            2u32..=6,
            prop::option::weighted(0.3, 1usize..=5),
            any::<bool>(),
        ),
        (any::<bool>(), any::<bool>(), prop::bool::weighted(0.3)),
        (prop::bool::weighted(0.3), prop::bool::weighted(0.2)),
        (
            prop_oneof![3 => Just(0u8), 1 => Just(10u8)],
            prop::option::weighted(0.2, any::<Index>()),
        ),
        prop::option::weighted(
            0.3,
            (any::<u64>(), prop::bool::weighted(0.3), any::<bool>()).prop_map(
                |(seed, count_absent, bad_rows)| Drift {
                    seed,
                    count_absent,
                    bad_rows,
                },
            ),
        ),
        (
            prop_oneof![6 => Just(1usize), 3 => Just(2usize), 1 => Just(3usize)],
            any::<bool>(),
            prop::bool::weighted(0.3),
        ),
    )
        .prop_map(
            |(
                (page_size, server_cap, oldest_first),
                (article_rows, alert_existing, poll_projects),
                (channel_projects, notify_running),
                (fault_percent, broken_detail),
                drift,
                (organisations, concurrent, keep),
            )| Setup {
                page_size,
                server_cap: server_cap.filter(|cap| *cap < page_size as usize),
                oldest_first,
                article_rows,
                alert_existing,
                poll_projects,
                channel_projects,
                notify_running,
                fault_percent,
                broken_detail,
                drift,
                organisations,
                concurrent,
                keep,
            },
        );
    let initial = prop::collection::vec(
        (any::<bool>(), 1u16..4320, status(), 0u8..4, -600i16..=600).prop_map(
            |(old, minutes, status, project, skew_seconds)| InitialJob {
                old,
                minutes,
                status,
                project,
                skew_seconds,
            },
        ),
        0..24,
    );
    let gap = (
        prop::collection::vec(op(), 0..6),
        prop::collection::vec((prop_oneof![4 => 1u8..4, 1 => 4u8..12], mid_op()), 0..4),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(ops, mid, restart)| Gap { ops, mid, restart });
    (setup, initial, prop::collection::vec(gap, 1..7)).prop_map(|(setup, initial, gaps)| History {
        setup,
        initial,
        gaps,
    })
}

fn job_id(numeric: bool, n: usize) -> String {
    if numeric {
        format!("{}", 1000 + n)
    } else {
        format!("job-{n:04}")
    }
}

fn project_of(pick: u8) -> Option<i64> {
    (pick > 0).then_some(i64::from(pick))
}

fn settled(status: &Status) -> bool {
    !matches!(status, Status::Running | Status::Pending)
}

/// The truth about one job, as the interpreter keeps it.
struct TrueJob {
    id: String,
    /// When it was really created (its `creation_date` may be off).
    created: OffsetDateTime,
    status: Status,
    deleted: bool,
    /// No change until this cycle has run (a job changed mid-cycle waits for the next).
    frozen_through: usize,
    /// Changed in the current gap (an old settled job changes once, into running/pending).
    touched: bool,
    /// Listed and status at the last snapshot (after the last cycle).
    visible_at_snapshot: bool,
    status_at_snapshot: Status,
}

/// Applies a history's operations to the simulator and keeps the truth.
struct Model {
    jobs: Vec<TrueJob>,
    /// The cycle about to run or running (1-based).
    cycle: usize,
    /// When the previous cycle began (the simulator's clock).
    previous_start: Option<OffsetDateTime>,
    /// Operations planned between the requests of this cycle: (after request n, op).
    mid: Vec<(u8, Op)>,
    requests: u32,
    next_id: usize,
    /// Ids are numbers written as text (`"1007"`), which a drifting API may send as numbers.
    numeric_ids: bool,
    /// Where the next cycle's listing window starts (µs), as the watcher placed it.
    edge_us: Option<i64>,
    applied_mid: u64,
    /// (job, cycle) for each job changed, created or deleted between a cycle's requests.
    changed_mid: HashSet<(String, usize)>,
}

enum Phase {
    Between,
    Mid,
}

impl Model {
    fn apply(&mut self, op: &Op, jobs: &mut Jobs<'_>, phase: Phase) -> bool {
        let now = jobs.now();
        let mid = matches!(phase, Phase::Mid);
        match op {
            Op::Create {
                status,
                project,
                skew_seconds,
                late_seconds,
            } => {
                let id = job_id(self.numeric_ids, self.next_id);
                self.next_id += 1;
                let mut job = NewJob::new(status.clone())
                    .name(format!("Feed {id}"))
                    .created(now + time::Duration::seconds(i64::from(*skew_seconds)))
                    .visible_after(Duration::from_secs(u64::from(*late_seconds)));
                if let Some(project) = project_of(*project) {
                    job = job.project(project);
                }
                if *status == Status::Error {
                    job = job.message(format!("{id} failed before cycle {}", self.cycle));
                }
                jobs.add(&id, job);
                if mid {
                    self.changed_mid.insert((id.clone(), self.cycle));
                }
                self.jobs.push(TrueJob {
                    id,
                    created: now,
                    status: status.clone(),
                    deleted: false,
                    frozen_through: if mid { self.cycle + 1 } else { 0 },
                    touched: !mid,
                    visible_at_snapshot: false,
                    status_at_snapshot: status.clone(),
                });
                true
            }
            Op::Change { job, to } | Op::Finish { job, to } | Op::Rerun { job, to } => {
                let wanted = |status: &Status| match op {
                    Op::Finish { .. } => !settled(status),
                    Op::Rerun { .. } => settled(status),
                    _ => true,
                };
                let Some(at) = self.pick(job, mid, wanted) else {
                    return false;
                };
                let young = self
                    .previous_start
                    .is_none_or(|start| self.jobs[at].created >= start - YOUNG);
                let target = &mut self.jobs[at];
                if target.status == *to {
                    return false;
                }
                // An old job last seen settled changes only by running again (or waiting),
                // and only once before a cycle looks: the rest is SPEC's permitted miss.
                if target.visible_at_snapshot
                    && !young
                    && settled(&target.status_at_snapshot)
                    && (target.touched || settled(to))
                {
                    return false;
                }
                let message = format!("{} failed before cycle {}", target.id, self.cycle);
                jobs.set_status(&target.id, to.clone(), Some(&message));
                target.status = to.clone();
                target.touched = true;
                if mid {
                    target.frozen_through = self.cycle + 1;
                    self.changed_mid.insert((target.id.clone(), self.cycle));
                }
                true
            }
            Op::CreateAtEdge { status, offset_us } => {
                let Some(edge) = self.edge_us.and_then(|edge| {
                    sdm_watch::domain::time::from_micros(edge + i64::from(*offset_us))
                }) else {
                    return false;
                };
                if mid {
                    return false;
                }
                let id = job_id(self.numeric_ids, self.next_id);
                self.next_id += 1;
                jobs.add(
                    &id,
                    NewJob::new(status.clone())
                        .name(format!("Edge {id}"))
                        .created(edge),
                );
                // Dated long before the previous cycle: it is an old job to the rules, which
                // SPEC guarantees to see only while it is active, so it waits for a cycle.
                self.jobs.push(TrueJob {
                    id,
                    created: edge,
                    status: status.clone(),
                    deleted: false,
                    frozen_through: self.cycle,
                    touched: true,
                    visible_at_snapshot: false,
                    status_at_snapshot: status.clone(),
                });
                true
            }
            Op::Delete { job } => {
                let Some(at) = self.pick(job, mid, |_| true) else {
                    return false;
                };
                let target = &mut self.jobs[at];
                jobs.remove(&target.id);
                target.deleted = true;
                if mid {
                    self.changed_mid.insert((target.id.clone(), self.cycle));
                }
                true
            }
        }
    }

    /// The job an operation names among those in a `wanted` status, if it may change now.
    fn pick(&self, index: &Index, mid: bool, wanted: impl Fn(&Status) -> bool) -> Option<usize> {
        let live: Vec<usize> = (0..self.jobs.len())
            .filter(|&at| !self.jobs[at].deleted && wanted(&self.jobs[at].status))
            .collect();
        if live.is_empty() {
            return None;
        }
        let at = live[index.index(live.len())];
        let job = &self.jobs[at];
        let frozen = job.frozen_through >= self.cycle;
        // A change between pages needs a job that the last snapshot listed and that no
        // one touched since: else the daemon may see it, first, as it was before.
        let steady = job.visible_at_snapshot && !job.touched;
        (!frozen && (!mid || steady)).then_some(at)
    }

    fn on_request(&mut self, _request: &RecordedRequest, jobs: &mut Jobs<'_>) {
        self.requests += 1;
        let due: Vec<Op> = self
            .mid
            .iter()
            .filter(|(after, _)| u32::from(*after) == self.requests)
            .map(|(_, op)| op.clone())
            .collect();
        self.mid
            .retain(|(after, _)| u32::from(*after) != self.requests);
        for op in due {
            if self.apply(&op, jobs, Phase::Mid) {
                self.applied_mid += 1;
            }
        }
    }

    /// After a cycle: what is listed now is what the next cycle's rules start from.
    fn snapshot(&mut self, visible: &HashSet<String>, started: OffsetDateTime) {
        for job in &mut self.jobs {
            job.visible_at_snapshot = visible.contains(&job.id);
            job.status_at_snapshot = job.status.clone();
            job.touched = false;
        }
        self.previous_start = Some(started);
    }
}

/// What an alert says, where the comparison looks, and the cycle that queued it.
#[derive(Clone, Debug, PartialEq)]
struct Told {
    cycle: usize,
    status: String,
    previous: Option<String>,
    name: Option<String>,
    completion_date: Option<String>,
    project: Option<i64>,
    message: Option<String>,
    /// With `keep`, when the reference's previous status is a settled one: the job's
    /// creation date. Once older than `keep` at the cycle the daemon tells it, the store may
    /// have forgotten that status, and the daemon may say `None`.
    forgettable: Option<OffsetDateTime>,
}

/// The naive poller: sees every job after every cycle.
struct Reference {
    floor: OffsetDateTime,
    first_done: bool,
    known: HashMap<String, Status>,
    told: BTreeMap<(String, String), Vec<Told>>,
    /// Each job's open incidents (`error`, `pending`), as told to channel `all`, which
    /// wants resolutions: opened by an alert, ended by any status change that ends them.
    open: HashMap<String, Vec<&'static str>>,
}

impl Reference {
    fn observe(&mut self, visible: &[SimJob], setup: &Setup, cycle: usize) {
        let ids: HashSet<&str> = visible.iter().map(|job| job.id.as_str()).collect();
        self.known.retain(|id, _| ids.contains(id.as_str()));
        let mut jobs: Vec<&SimJob> = visible.iter().collect();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        for job in jobs {
            let covered = job.creation_date > self.floor
                || !settled(&job.status)
                || self.known.contains_key(&job.id);
            if !covered {
                continue;
            }
            let previous = self.known.insert(job.id.clone(), job.status.clone());
            if previous.as_ref() != Some(&job.status) {
                self.resolve(job, previous.as_ref(), setup, cycle);
            }
            if previous.as_ref() == Some(&job.status)
                || !notify_on(setup).contains(&job.status)
                || !(self.first_done || setup.alert_existing)
                || (setup.poll_projects && job.project != Some(1))
            {
                continue;
            }
            let forgettable =
                (setup.keep && previous.as_ref().is_some_and(settled)).then_some(job.creation_date);
            let told = Told {
                cycle,
                status: job.status.to_string(),
                previous: previous.map(|p| p.to_string()),
                name: Some(job.name.clone()),
                completion_date: job.completion_date.map(sim_time),
                project: payload_project(setup, job.project),
                message: (job.status == Status::Error)
                    .then(|| job.message.clone().unwrap_or_default()),
                forgettable,
            };
            for channel in channels(setup, &job.status, job.project) {
                self.told
                    .entry((job.id.clone(), channel))
                    .or_default()
                    .push(told.clone());
            }
            let opens = match job.status {
                Status::Error => Some("error"),
                Status::Pending => Some("pending"),
                _ => None,
            };
            let open = self.open.entry(job.id.clone()).or_default();
            if let Some(condition) = opens.filter(|c| !open.contains(c)) {
                open.push(condition);
            }
        }
        self.first_done = true;
    }

    /// `job`'s change ends its open incidents whose condition it leaves: a resolution each
    /// to channel `all` (told as status `resolved:<condition>`).
    fn resolve(&mut self, job: &SimJob, previous: Option<&Status>, setup: &Setup, cycle: usize) {
        let Some(open) = self.open.get_mut(&job.id) else {
            return;
        };
        let ends = |condition: &str| match condition {
            "error" => job.status == Status::Done,
            _ => job.status != Status::Pending,
        };
        let (ended, still): (Vec<&str>, Vec<&str>) = open.iter().partition(|c| ends(c));
        *open = still;
        for condition in ended {
            self.told
                .entry((job.id.clone(), "all".to_owned()))
                .or_default()
                .push(Told {
                    cycle,
                    status: format!("resolved:{condition}"),
                    previous: previous.map(|p| p.to_string()),
                    name: Some(job.name.clone()),
                    completion_date: job.completion_date.map(sim_time),
                    project: payload_project(setup, job.project),
                    message: None,
                    forgettable: None,
                });
        }
    }
}

fn notify_on(setup: &Setup) -> Vec<Status> {
    let mut statuses = vec![Status::Done, Status::Error, Status::Pending];
    if setup.notify_running {
        statuses.push(Status::Running);
    }
    statuses
}

/// The configured channels that want `status` of a job in `project`, in config order.
fn channels(setup: &Setup, status: &Status, project: Option<i64>) -> Vec<String> {
    let mut names = vec!["all".to_owned()];
    if *status == Status::Error {
        names.push("errors".to_owned());
    }
    if setup.channel_projects && project == Some(2) {
        names.push("p2".to_owned());
    }
    names
}

/// The project an alert names: the row's, or what listings by project taught the daemon.
fn payload_project(setup: &Setup, project: Option<i64>) -> Option<i64> {
    if !setup.article_rows {
        return project;
    }
    let mut interest = Vec::new();
    if setup.poll_projects {
        interest.push(1);
    }
    if setup.channel_projects {
        interest.push(2);
    }
    project.filter(|p| interest.contains(p))
}

/// One organisation: `[api]` with its token, as before organisations; several: a
/// `[[organisation]]` table each, named `o0`, `o1`, ...
fn config_text(base: &url::Url, orgs: &[Org], setup: &Setup, state: &Path) -> String {
    let notify: Vec<String> = notify_on(setup)
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect();
    let mut text = format!(
        r#"
[api]
base_url = "{base}"
{token}
timeout = "2s"
page_size = {page_size}
[poll]
interval = "60s"
lookback = "{lookback}m"
notify_on = [{notify}]
alert_existing = {alert_existing}
projects = [{projects}]
[retry]
initial_interval = "1ms"
max_interval = "5ms"
max_elapsed = "400ms"
[state]
path = "{state}"
keep = "{keep}"
[http]
listen = ""
[[webhook]]
name = "all"
url = "http://127.0.0.1:9/all"
send_resolved = true
[[webhook]]
name = "errors"
url = "http://127.0.0.1:9/errors"
events = ["error"]
"#,
        base = base,
        token = match orgs {
            [only] => format!("token = \"{}\"", only.sim.token()),
            _ => String::new(),
        },
        page_size = setup.page_size,
        notify = notify.join(", "),
        alert_existing = setup.alert_existing,
        projects = if setup.poll_projects { "1" } else { "" },
        state = state.display(),
        lookback = setup.lookback_minutes(),
        keep = if setup.keep { "1d" } else { "90d" },
    );
    if setup.channel_projects {
        text.push_str(
            "[[webhook]]\nname = \"p2\"\nurl = \"http://127.0.0.1:9/p2\"\nprojects = [2]\n",
        );
    }
    if orgs.len() > 1 {
        for org in orgs {
            text.push_str(&format!(
                "[[organisation]]\nname = \"{}\"\ntoken = \"{}\"\n",
                org.name,
                org.sim.token()
            ));
        }
    }
    text
}

static HISTORIES: AtomicU64 = AtomicU64::new(0);
static ALERTS: AtomicU64 = AtomicU64::new(0);
static MID_CHANGES: AtomicU64 = AtomicU64::new(0);
static CYCLES: AtomicU64 = AtomicU64::new(0);
static RESOLUTIONS: AtomicU64 = AtomicU64::new(0);
static RESTARTS: AtomicU64 = AtomicU64::new(0);

/// One organisation of a history: its part of the simulator, its true jobs, its watcher,
/// the reference poller's view of it and the alerts its watcher queued.
struct Org {
    /// As the config names it (`o0`, `o1`, ...); the simulator knows it by `sim.name()`.
    name: String,
    sim: SimOrganisation,
    model: Arc<Mutex<Model>>,
    reference: Reference,
    watcher: Option<Arc<Watcher>>,
    client: Option<SdmClient>,
    queued: Vec<((String, String), Told)>,
    /// The simulator's time as each cycle began.
    cycle_starts: Vec<OffsetDateTime>,
}

/// Runs one history, the same in each of its organisations (the same job ids in each, so
/// that an alert crossing organisations would show); `Err` says how the daemon and the
/// reference differ.
async fn run(history: &History) -> Result<(), String> {
    let setup = &history.setup;
    let sim = Simulator::start().await.map_err(|e| e.to_string())?;
    let mut orgs: Vec<Org> = (0..setup.organisations)
        .map(|i| {
            let part = if i == 0 {
                (*sim).clone()
            } else {
                sim.add_organisation(&format!("sim{i}"), &format!("sim-token-org-{i}-0123456789"))
            };
            Org {
                name: format!("o{i}"),
                sim: part,
                model: Arc::new(Mutex::new(Model {
                    jobs: Vec::new(),
                    cycle: 1,
                    previous_start: None,
                    mid: Vec::new(),
                    requests: 0,
                    next_id: 0,
                    numeric_ids: setup.drift.is_some(),
                    edge_us: None,
                    applied_mid: 0,
                    changed_mid: HashSet::new(),
                })),
                reference: Reference {
                    floor: OffsetDateTime::UNIX_EPOCH,
                    first_done: false,
                    known: HashMap::new(),
                    told: BTreeMap::new(),
                    open: HashMap::new(),
                },
                watcher: None,
                client: None,
                queued: Vec::new(),
                cycle_starts: Vec::new(),
            }
        })
        .collect();
    for org in &mut orgs {
        let part = &org.sim;
        part.advance(-time::Duration::days(3));
        part.set_list_project(!setup.article_rows);
        part.set_order(if setup.oldest_first {
            Order::OldestFirst
        } else {
            Order::NewestFirst
        });
        if let Some(cap) = setup.server_cap {
            part.set_max_page_size(cap);
        }
        let start = part.now();
        org.reference.floor = start - time::Duration::minutes(setup.lookback_minutes());
        let mut model = org.model.lock().unwrap();
        part.with_jobs(|jobs| {
            for job in &history.initial {
                let age = if job.old {
                    time::Duration::minutes(120 + i64::from(job.minutes))
                } else {
                    time::Duration::minutes(1 + i64::from(job.minutes) % 45)
                };
                let id = job_id(model.numeric_ids, model.next_id);
                model.next_id += 1;
                let created = start - age;
                let mut new = NewJob::new(job.status.clone())
                    .name(format!("Feed {id}"))
                    .created(created + time::Duration::seconds(i64::from(job.skew_seconds)));
                if let Some(project) = project_of(job.project) {
                    new = new.project(project);
                }
                if job.status == Status::Error {
                    new = new.message(format!("{id} failed long ago"));
                }
                jobs.add(&id, new);
                model.jobs.push(TrueJob {
                    id,
                    created,
                    status: job.status.clone(),
                    deleted: false,
                    frozen_through: 0,
                    touched: false,
                    visible_at_snapshot: false,
                    status_at_snapshot: job.status.clone(),
                });
            }
        });
    }
    if let Some(index) = &setup.broken_detail
        && !history.initial.is_empty()
    {
        // The same id in every organisation: each one's detail fails.
        let id = job_id(setup.drift.is_some(), index.index(history.initial.len()));
        sim.fail_always(&format!("/jobs/{id}/"), Fault::Status(500));
    }
    if setup.fault_percent > 0 {
        let palette = vec![
            Fault::Status(500),
            Fault::Status(503),
            Fault::RateLimited {
                retry_after_secs: 0,
            },
            Fault::Truncated,
            Fault::NotJson,
            Fault::Drop,
        ];
        sim.set_fault_rate(f64::from(setup.fault_percent) / 100.0, palette, 7);
    }
    let dir = state_dir();
    let text = config_text(&sim.base_url(), &orgs, setup, &dir.path().join("state.db"));
    let mut config = Config::from_toml(&text, Path::new("differential.toml"))
        .map_err(|e| format!("config: {e}"))?;
    for org in &mut config.organisations {
        // The rate cap is the daemon's own; the simulator does not care.
        org.api.max_requests_per_second = 100_000.0;
    }
    let injected = Arc::new(AtomicU64::new(0));
    if let Some(drift) = &setup.drift {
        sim.set_shape_hook(Some(drift_hook(drift, injected.clone())));
    }
    let state = dir.path().join("state.db");
    let mut store = Store::open(&state).map_err(|e| e.to_string())?;
    let config = Arc::new(config);
    for (org, configured) in orgs.iter_mut().zip(&config.organisations) {
        let client = SdmClient::new(&configured.api, &config.retry).map_err(|e| e.to_string())?;
        org.client = Some(client);
    }
    // With `keep`, the watchers' clock (which `keep` counts on) is the simulator's.
    let clock = setup.keep.then(sdm_watch::domain::ManualClock::new);
    let mut senders = start_watchers(&mut orgs, &config, &store, clock.as_ref());
    let hook_models: HashMap<String, Arc<Mutex<Model>>> = orgs
        .iter()
        .map(|org| (org.sim.name().to_owned(), org.model.clone()))
        .collect();
    sim.set_request_hook(Some(Box::new(move |request, jobs| {
        if let Some(model) = request
            .organisation
            .as_ref()
            .and_then(|name| hook_models.get(name))
        {
            model.lock().unwrap().on_request(request, jobs)
        }
    })));

    let cycles = history.gaps.len() + 1;
    let mut extra = 0;
    let mut last_rowid = 0;
    for cycle in 1.. {
        let mut started = Vec::new();
        for org in &orgs {
            if cycle > 1 {
                org.sim.advance(setup.interval());
            }
            let mut model = org.model.lock().unwrap();
            model.cycle = cycle;
            model.requests = 0;
            if cycle <= cycles && cycle > 1 {
                let gap = &history.gaps[cycle - 2];
                // What did not fire during the last cycle happens before this one.
                let mut ops: Vec<Op> = model.mid.drain(..).map(|(_, op)| op).collect();
                ops.extend(gap.ops.iter().cloned());
                org.sim.with_jobs(|jobs| {
                    for op in &ops {
                        model.apply(op, jobs, Phase::Between);
                    }
                });
                // One change per request: two between the same pages could cancel out in
                // the listing's count (see the module's comment).
                let mut mid = gap.mid.clone();
                if setup.drift.as_ref().is_some_and(|drift| drift.count_absent) {
                    mid.clear();
                }
                mid.sort_by_key(|(after, _)| *after);
                mid.dedup_by_key(|(after, _)| *after);
                model.mid = mid;
            } else {
                model.mid.clear();
            }
            started.push(org.sim.now());
        }
        if let Some(clock) = &clock {
            clock.set(orgs[0].sim.now());
        }
        if cycle > 1 && cycle <= cycles && history.gaps[cycle - 2].restart {
            // A restart: what the old process held in memory is gone.
            RESTARTS.fetch_add(1, Ordering::Relaxed);
            for org in &mut orgs {
                org.watcher = None;
            }
            drop(senders);
            store = Store::open(&state).map_err(|e| e.to_string())?;
            senders = start_watchers(&mut orgs, &config, &store, clock.as_ref());
        }
        // Every organisation's cycle at once over the one store, or one after another.
        let mut outcomes = Vec::new();
        if setup.concurrent {
            let running: Vec<_> = orgs
                .iter()
                .map(|org| {
                    let watcher = org.watcher.clone().expect("set above");
                    tokio::spawn(async move { watcher.cycle().await })
                })
                .collect();
            for task in running {
                outcomes.push(task.await.map_err(|e| e.to_string())?);
            }
        } else {
            for org in &orgs {
                outcomes.push(org.watcher.as_ref().expect("set above").cycle().await);
            }
        }
        for (org, outcome) in orgs.iter().zip(outcomes) {
            outcome.map_err(|e| {
                format!(
                    "organisation {}: cycle {cycle} failed: {}",
                    org.name,
                    sdm_watch::domain::error_chain(&e)
                )
            })?;
        }
        CYCLES.fetch_add(1, Ordering::Relaxed);
        for (org, started) in orgs.iter_mut().zip(started) {
            let visible = org.sim.visible_jobs();
            let visible_ids: HashSet<String> = visible.iter().map(|job| job.id.clone()).collect();
            {
                let mut model = org.model.lock().unwrap();
                model.snapshot(&visible_ids, started);
                model.edge_us = org.watcher.as_ref().and_then(|w| w.next_window_us());
            }
            org.reference.observe(&visible, setup, cycle);
            org.cycle_starts.push(started);
        }
        for (org, told) in daemon_alerts(&store, &mut last_rowid, cycle).await? {
            let Some(org) = orgs.iter_mut().find(|o| o.name == org) else {
                return Err(format!(
                    "an alert of organisation {org:?}, which is not configured"
                ));
            };
            org.queued.push(told);
        }
        if cycle > cycles {
            // Settling: held alerts complete or are given up on (retry.max_elapsed).
            let held = store
                .run(|conn| held::count(conn))
                .await
                .map_err(|e| e.to_string())?;
            extra += 1;
            if held == 0 || extra > 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    let skipped: u64 = orgs
        .iter()
        .filter_map(|org| org.client.as_ref())
        .map(SdmClient::rows_skipped)
        .sum();
    if skipped != injected.load(Ordering::Relaxed) {
        return Err(format!(
            "{} unreadable rows were served, the clients counted {skipped} skipped",
            injected.load(Ordering::Relaxed),
        ));
    }
    for org in &mut orgs {
        let model = org.model.lock().unwrap();
        MID_CHANGES.fetch_add(model.applied_mid, Ordering::Relaxed);
        let mut got: BTreeMap<(String, String), Vec<Told>> = BTreeMap::new();
        for (key, told) in org.queued.drain(..) {
            got.entry(key).or_default().push(told);
        }
        if setup.drift.is_some() {
            // The drifting API writes dates other ways: the same instant is the same date.
            for told in org
                .reference
                .told
                .values_mut()
                .chain(got.values_mut())
                .flatten()
            {
                told.completion_date = told
                    .completion_date
                    .as_deref()
                    .and_then(parse_api_time)
                    .map(sdm_watch::domain::time::format_api_time);
            }
        }
        let forgotten = |created: OffsetDateTime, cycle: usize| {
            // A minute's slack: the watchers' clock is read a moment after the reference's.
            org.cycle_starts
                .get(cycle - 1)
                .is_some_and(|start| created < *start - KEEP + time::Duration::minutes(1))
        };
        compare(setup, &model.changed_mid, &org.reference.told, &got, forgotten).map_err(|error| {
            format!(
                "organisation {} of {}: {error}\nrequests (cycles start at status=running page 1):\n{}",
                org.name,
                setup.organisations,
                request_log(&sim)
            )
        })?;
        ALERTS.fetch_add(
            got.values().map(|told| told.len() as u64).sum(),
            Ordering::Relaxed,
        );
        RESOLUTIONS.fetch_add(
            got.values()
                .flatten()
                .filter(|told| told.status.starts_with("resolved:"))
                .count() as u64,
            Ordering::Relaxed,
        );
    }
    HISTORIES.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A watcher for each organisation over `store`, as a process starting would make them;
/// the senders of their setups, to keep.
fn start_watchers(
    orgs: &mut [Org],
    config: &Arc<Config>,
    store: &Store,
    clock: Option<&sdm_watch::domain::ManualClock>,
) -> Vec<tokio::sync::watch::Sender<Arc<WatchSetup>>> {
    let mut senders = Vec::new();
    for (org, configured) in orgs.iter_mut().zip(&config.organisations) {
        let client = org.client.clone().expect("made before the watchers");
        let (sender, current) = tokio::sync::watch::channel(Arc::new(WatchSetup {
            config: config.clone(),
            org: configured.clone(),
            client,
        }));
        senders.push(sender);
        let mut watcher = Watcher::new(store.clone(), Arc::new(Notify::new()), current);
        if let Some(clock) = clock {
            watcher = watcher.with_clock(Arc::new(clock.clone()));
        }
        org.watcher = Some(Arc::new(watcher));
    }
    senders
}

/// The simulator's answers in other shapes (SPEC, "Reading the API tolerantly"): `count` as
/// `N.0`, `"N"` or absent; ids as numbers; `project` as text or `{"id": ...}`; dates with
/// an offset, other fraction digits or no zone (the same instant); error messages as DRF
/// arrays and objects; unknown fields; and rows without `id` or `status`, counted in
/// `injected`. Each answer and field picks its shape at random.
fn drift_hook(drift: &Drift, injected: Arc<AtomicU64>) -> sdm_watch::sim::ShapeHook {
    use serde_json::{Value, json};
    let mut rng = fastrand::Rng::with_seed(drift.seed);
    let drift = drift.clone();
    Box::new(move |path, body| {
        let Value::Object(answer) = body else { return };
        answer.insert("surprise".into(), json!({"added": "later", "n": [1, 2]}));
        if path.ends_with("/jobs/") {
            let count = answer.get("count").and_then(Value::as_u64).unwrap_or(0);
            let shaped = match rng.u8(..4) {
                0 => json!(count),
                1 => json!(count as f64),
                2 => json!(count.to_string()),
                _ => json!(format!("{count}.0")),
            };
            if drift.count_absent {
                answer.remove("count");
            } else {
                answer.insert("count".into(), shaped);
            }
            let Some(Value::Array(rows)) = answer.get_mut("results") else {
                return;
            };
            for row in rows.iter_mut() {
                reshape_row(&mut rng, row);
            }
            if drift.bad_rows && rng.bool() {
                let bad = match rng.u8(..4) {
                    0 => json!({"name": "no id", "status": "done"}),
                    1 => json!({"id": "no-status", "name": "x"}),
                    2 => json!({"id": {"uuid": "x"}, "status": "error"}),
                    _ => json!(42),
                };
                rows.insert(rng.usize(..=rows.len()), bad);
                injected.fetch_add(1, Ordering::Relaxed);
            }
        } else if let Some(message) = answer.get("message").and_then(Value::as_str) {
            let message = message.to_owned();
            let shaped = match rng.u8(..4) {
                0 => json!(message),
                1 => json!([message]),
                2 => json!({"detail": message}),
                _ => json!({"non_field_errors": [message]}),
            };
            answer.insert("message".into(), shaped);
        }
    })
}

fn reshape_row(rng: &mut fastrand::Rng, row: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let Value::Object(row) = row else { return };
    row.insert("extra_field".into(), json!({"nested": [null, true]}));
    if let Some(id) = row
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse::<u64>().ok())
        && rng.bool()
    {
        row.insert("id".into(), json!(id));
    }
    if let Some(project) = row.get("project").and_then(Value::as_i64) {
        let shaped = match rng.u8(..4) {
            0 => json!(project),
            1 => json!(project.to_string()),
            2 => json!({"id": project, "name": "P"}),
            _ => json!({"id": project.to_string()}),
        };
        row.insert("project".into(), shaped);
    }
    for key in ["creation_date", "completion_date"] {
        let Some(at) = row
            .get(key)
            .and_then(Value::as_str)
            .and_then(parse_api_time)
        else {
            continue;
        };
        row.insert(key.into(), json!(reshape_date(rng, at)));
    }
}

/// The same instant written another way.
fn reshape_date(rng: &mut fastrand::Rng, at: OffsetDateTime) -> String {
    use time::format_description::well_known::Rfc3339;
    let stem = |at: OffsetDateTime| {
        at.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap()
    };
    let fraction = format!("{:09}", at.nanosecond());
    let trimmed = fraction.trim_end_matches('0');
    let dot = |digits: &str| {
        if digits.is_empty() {
            String::new()
        } else {
            format!(".{digits}")
        }
    };
    match rng.u8(..6) {
        0 => format!("{}{}Z", stem(at), dot(&fraction)),
        1 => format!("{}{}Z", stem(at), dot(trimmed)),
        2 => format!("{}{}+00:00", stem(at), dot(trimmed)),
        3 => format!("{}{}", stem(at), dot(trimmed)),
        4 => at
            .to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap())
            .format(&Rfc3339)
            .unwrap(),
        _ => at
            .to_offset(time::UtcOffset::from_hms(-7, 0, 0).unwrap())
            .format(&Rfc3339)
            .unwrap(),
    }
}

/// The simulator's request log, one line a request, for a failing history.
fn request_log(sim: &Simulator) -> String {
    sim.requests()
        .iter()
        .map(|r| {
            let query: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("  {} {} {}", r.status, r.path, query.join("&"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The alerts the daemon queued since `last_rowid` (which moves on), by job and channel,
/// in the order they were queued, as queued by `cycle`.
/// The organisation of each is the store's, which its payload must name (with several
/// organisations; with one, the config has no table and the payload names none).
async fn daemon_alerts(
    store: &Store,
    last_rowid: &mut i64,
    cycle: usize,
) -> Result<Vec<(String, ((String, String), Told))>, String> {
    let after = *last_rowid;
    let rows: Vec<(i64, String, String, String, String)> = store
        .run(move |conn| {
            conn.query_map(
                "SELECT rowid, job_id, channel, payload, organisation FROM alerts
                 WHERE rowid > ?1 ORDER BY rowid",
                &[&after],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    for (rowid, job, channel, payload, org) in rows {
        *last_rowid = rowid;
        let body: serde_json::Value = serde_json::from_str(&payload).map_err(|e| e.to_string())?;
        let data = &body["data"];
        let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
        let named = text(&data["organisation"]);
        let org = match (org.as_str(), named) {
            ("default", None) => "o0".to_owned(),
            (org, Some(named)) if named == org => org.to_owned(),
            (org, named) => {
                return Err(format!(
                    "an alert of organisation {org} about job {job} names organisation {named:?}"
                ));
            }
        };
        // A resolution tells the condition that ended; the job it shows has left it.
        let resolved = body["type"] == "job.resolved";
        let status = match resolved {
            true => format!("resolved:{}", text(&data["condition"]).unwrap_or_default()),
            false => text(&data["job"]["status"]).unwrap_or_default(),
        };
        got.push((
            org,
            (
                (job, channel),
                Told {
                    cycle,
                    status,
                    previous: text(&data["previous_status"]),
                    name: text(&data["job"]["name"]),
                    completion_date: text(&data["job"]["completion_date"]),
                    project: data["job"]["project"].as_i64(),
                    message: text(&data["job"]["message"]).filter(|_| !resolved),
                    forgettable: None,
                },
            ),
        ));
    }
    Ok(got)
}

fn compare(
    setup: &Setup,
    changed_mid: &HashSet<(String, usize)>,
    want: &BTreeMap<(String, String), Vec<Told>>,
    got: &BTreeMap<(String, String), Vec<Told>>,
    forgotten: impl Fn(OffsetDateTime, usize) -> bool,
) -> Result<(), String> {
    let story = |told: &[Told]| -> Vec<(String, Option<String>)> {
        told.iter()
            .map(|t| (t.status.clone(), t.previous.clone()))
            .collect()
    };
    // The same story, but where the store may have forgotten the previous status.
    let same_story = |want: &[Told], got: &[Told]| {
        want.len() == got.len()
            && want.iter().zip(got).all(|(want, got)| {
                want.status == got.status
                    && (want.previous == got.previous
                        || (got.previous.is_none()
                            && want.forgettable.is_some_and(|at| forgotten(at, got.cycle))))
            })
    };
    let keys: HashSet<&(String, String)> = want.keys().chain(got.keys()).collect();
    let mut keys: Vec<_> = keys.into_iter().collect();
    keys.sort();
    for key in keys {
        let (want, got) = (
            want.get(key).map_or(&[][..], Vec::as_slice),
            got.get(key).map_or(&[][..], Vec::as_slice),
        );
        if !same_story(want, got) {
            return Err(format!(
                "job {} on channel {}: the reference alerts {:?}, the daemon {:?}",
                key.0,
                key.1,
                story(want),
                story(got)
            ));
        }
        for (want, got) in want.iter().zip(got) {
            let message_ok = match (&want.message, &got.message) {
                (Some(_), None) => setup.fault_percent > 0 || setup.broken_detail.is_some(),
                (Some(_), Some(_)) if setup.fault_percent > 0 => true,
                (want, got) => want == got,
            };
            // The cycle that saw it, or the next for a job changed while that cycle read
            // (or later, while faults keep a detail from coming).
            let in_time = got.cycle == want.cycle
                || (got.cycle == want.cycle + 1
                    && changed_mid.contains(&(key.0.clone(), want.cycle)))
                || (got.cycle > want.cycle
                    && (setup.fault_percent > 0 || setup.broken_detail.is_some()));
            if !in_time {
                return Err(format!(
                    "job {} on channel {}: the reference alerts {} at cycle {}, the daemon at cycle {}",
                    key.0, key.1, want.status, want.cycle, got.cycle
                ));
            }
            if want.name != got.name
                || want.completion_date != got.completion_date
                || want.project != got.project
                || !message_ok
            {
                return Err(format!(
                    "job {} on channel {}: the reference tells {want:?}, the daemon {got:?}",
                    key.0, key.1
                ));
            }
        }
    }
    Ok(())
}

/// State files on a tmpfs where there is one: thousands of histories, each committing.
fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory")
}

fn check(seed: u64) {
    let cases: u32 = env_number("SDM_WATCH_DIFF_CASES").unwrap_or(1000);
    let seed = env_number::<u64>("SDM_WATCH_DIFF_SEED")
        .map_or(seed, |base| base.wrapping_mul(31).wrapping_add(seed));
    let mut runner = seeded::runner(cases, seed, 4096);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runner.run(&history(), |history| {
        runtime.block_on(run(&history)).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => println!(
            "differential (seed {seed}): {cases} histories pass; so far {} histories, {} cycles, {} alerts compared ({} resolutions), {} restarts, {} changes between pages",
            HISTORIES.load(Ordering::Relaxed),
            CYCLES.load(Ordering::Relaxed),
            ALERTS.load(Ordering::Relaxed),
            RESOLUTIONS.load(Ordering::Relaxed),
            RESTARTS.load(Ordering::Relaxed),
            MID_CHANGES.load(Ordering::Relaxed)
        ),
        Err(TestError::Fail(reason, history)) => {
            panic!("the daemon and the reference differ: {reason}\nminimal history: {history:#?}")
        }
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn detection_equals_a_poller_that_lists_everything_seed_1() {
    check(1);
}

#[test]
fn detection_equals_a_poller_that_lists_everything_seed_2() {
    check(2);
}
