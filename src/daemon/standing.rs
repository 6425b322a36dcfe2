//! Where a replica stands for each organisation among replicas on PostgreSQL, as the
//! leadership task ([`super::leader`]) publishes it and the poll loops read it: the lease
//! names, the standing, the fence of an organisation not led here, and why `once` could
//! not take a lease.

use std::sync::Arc;

use tokio::sync::{OwnedMutexGuard, watch};
use tokio::time::Instant;

use crate::domain::DEFAULT_ORGANISATION;
use crate::store::Fence;

/// The lease of the default organisation, as it was before organisations.
pub const LEASE: &str = "poller";

/// The lease of organisation `org`: [`LEASE`] for the default one (so that a deployment
/// from before organisations hands over to this one), `poller/<org>` for the others.
pub fn lease_of(org: &str) -> String {
    if org == DEFAULT_ORGANISATION {
        LEASE.to_owned()
    } else {
        format!("{LEASE}/{org}")
    }
}

/// Where this replica stands for one organisation, as last learnt from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The lease's token while this replica leads.
    pub token: Option<i64>,
    /// Who leads, this replica included; `None` when nobody does or it is unknown.
    pub leader: Option<String>,
    /// While leading: by this replica's clock, the lease may lapse from then on.
    pub valid_until: Option<Instant>,
}

impl Standing {
    /// Leads now: holds the lease and it has not lapsed by the local clock.
    pub fn leads(&self) -> bool {
        self.token.is_some() && self.valid_until.is_some_and(|until| Instant::now() < until)
    }
}

/// The fence of organisation `org`'s watcher while this replica does not lead it: no
/// lease ever has token 0, so nothing commits.
pub fn no_fence(org: &str) -> Fence {
    Fence {
        lease: lease_of(org),
        token: 0,
    }
}

/// One organisation's side for its poll loop.
#[derive(Clone)]
pub struct OrgHandle {
    pub standing: watch::Receiver<Standing>,
    pub(super) turn: Arc<tokio::sync::Mutex<()>>,
}

impl OrgHandle {
    /// Waits for the turn to poll; held for the cycle, the lease stays.
    pub async fn turn(&self) -> OwnedMutexGuard<()> {
        self.turn.clone().lock_owned().await
    }
}

/// The poll loops' side: where this replica stands for each organisation.
#[derive(Clone)]
pub struct LeaderHandle {
    pub(super) orgs: Arc<Vec<(String, OrgHandle)>>,
}

impl LeaderHandle {
    /// Organisation `org`'s side; `None` for one this leader was not built with.
    pub fn org(&self, org: &str) -> Option<OrgHandle> {
        self.orgs
            .iter()
            .find(|(name, _)| name == org)
            .map(|(_, handle)| handle.clone())
    }
}

/// Why `once` cannot poll: another replica leads an organisation it was asked for.
#[derive(Debug)]
pub struct Refused {
    pub org: String,
    pub leader: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Refused { org, leader } = self;
        if org == DEFAULT_ORGANISATION {
            write!(f, "another replica leads ({leader})")
        } else {
            write!(f, "another replica leads organisation {org} ({leader})")
        }
    }
}

impl std::error::Error for Refused {}
