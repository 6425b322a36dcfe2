//! One organisation the simulator serves: its token, its jobs and its clock. A
//! [`super::Simulator`] starts with one and may serve more, each answering to its own token.

use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

use super::state::{Order, SimJob, SimState};
use super::{Jobs, NewJob, RecordedRequest, Shared, lock};
use crate::domain::Status;

/// An organisation as the server keeps it.
pub(super) struct Org {
    pub name: String,
    /// The token accepted now; [`SimOrganisation::set_token`] revokes or rotates it.
    pub token: Mutex<String>,
    /// The e-mail and password `POST auth/token/` takes for this organisation's token.
    pub login: Mutex<(String, String)>,
    pub state: Mutex<SimState>,
}

impl Org {
    pub fn new(name: &str, token: &str) -> Org {
        Org {
            name: name.to_owned(),
            token: Mutex::new(token.to_owned()),
            login: Mutex::new((format!("{name}@example.com"), format!("{name}-password"))),
            state: Mutex::new(SimState::new()),
        }
    }
}

/// A handle on one organisation of a running simulator.
#[derive(Clone)]
pub struct SimOrganisation {
    pub(super) org: Arc<Org>,
    pub(super) shared: Arc<Shared>,
}

impl SimOrganisation {
    /// The organisation's name, as recorded requests carry it.
    pub fn name(&self) -> &str {
        &self.org.name
    }

    /// The e-mail and password that `POST auth/token/` answers with this organisation's
    /// token (by default `<name>@example.com` and `<name>-password`).
    pub fn set_login(&self, email: &str, password: &str) {
        *lock(&self.org.login) = (email.to_owned(), password.to_owned());
    }

    /// The requests that carried this organisation's token.
    pub fn own_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|request| request.organisation.as_deref() == Some(self.org.name.as_str()))
            .cloned()
            .collect()
    }

    pub fn token(&self) -> String {
        lock(&self.org.token).clone()
    }

    /// From now on only `token` is accepted (the old one is revoked).
    pub fn set_token(&self, token: &str) {
        *lock(&self.org.token) = token.to_owned();
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        lock(&self.org.state)
    }

    /// Runs `change` on the jobs, under the simulator's lock.
    pub fn with_jobs<T>(&self, change: impl FnOnce(&mut Jobs<'_>) -> T) -> T {
        change(&mut Jobs {
            state: &mut self.state(),
        })
    }

    /// Adds a job and returns its id.
    pub fn add_job(&self, job: NewJob) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        self.add_job_with_id(&id, job);
        id
    }

    pub fn add_job_with_id(&self, id: &str, job: NewJob) {
        self.with_jobs(|jobs| jobs.add(id, job));
    }

    /// Moves a job to `status`; `message` is what the detail shows on error. Returns false
    /// for an unknown id.
    pub fn set_status(&self, id: &str, status: Status, message: Option<&str>) -> bool {
        self.with_jobs(|jobs| jobs.set_status(id, status, message))
    }

    /// Deletes a job; false for an unknown id.
    pub fn remove_job(&self, id: &str) -> bool {
        self.with_jobs(|jobs| jobs.remove(id))
    }

    /// Every job that listings show now.
    pub fn visible_jobs(&self) -> Vec<SimJob> {
        self.with_jobs(|jobs| jobs.visible())
    }

    /// The simulator's clock: the real one plus whatever [`SimOrganisation::advance`] added.
    pub fn now(&self) -> OffsetDateTime {
        self.state().now()
    }

    /// Moves the simulator's clock by `by` (negative to set it back).
    pub fn advance(&self, by: time::Duration) {
        self.state().clock_offset += by;
    }

    /// Whether list rows carry `project` (they do by default; the article's example has none).
    pub fn set_list_project(&self, shown: bool) {
        self.state().list_project = shown;
    }

    pub fn set_order(&self, order: Order) {
        self.state().order = order;
    }

    pub fn set_max_page_size(&self, size: usize) {
        self.state().max_page_size = size.max(1);
    }

    /// Makes `next` links point at another origin, as a hostile or misconfigured server might.
    pub fn set_next_origin(&self, origin: Option<&str>) {
        self.state().next_origin = origin.map(str::to_owned);
    }
}
