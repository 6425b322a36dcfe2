//! Leadership among replicas sharing PostgreSQL, one lease per organisation. One task per
//! replica, every third of a lease: renews the leases it holds (one statement), says that
//! it is alive, reads who holds the others, and follows its [`share::plan`]: it gives up
//! its surplus, only leases whose poll loop is between cycles (so no cycle is cut short),
//! and takes free leases up to its share. It publishes, per organisation, where this
//! replica stands; an organisation's poll loop polls only while this replica leads it.
//! Each organisation's store handle is fenced with its lease's token, so a replica that
//! lost a lease (paused, cut off) commits nothing for that organisation after another
//! took over; the poll loop also drops a cycle in flight once the lease may have lapsed
//! by its own clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::share::{self, Seen};
pub use super::standing::{LEASE, LeaderHandle, OrgHandle, Refused, Standing, lease_of, no_fence};
use crate::domain::time::now_ms;
use crate::ops::health::{Health, Role};
use crate::store::postgres::lease::{self, Leadership};
use crate::store::postgres::{self, PgSettings};
use crate::store::{Fence, StoreError};
use crate::telemetry::{LEADER, LEADERSHIP_CHANGES, ORGANISATION_LEADER};

/// One organisation's lease, held by this replica or not.
struct OrgLease {
    org: String,
    lease: Leadership,
    token: Option<i64>,
    published: watch::Sender<Standing>,
    fence: Arc<Mutex<Fence>>,
    /// Held by the poll loop for the length of a cycle: the lease is given up only
    /// between cycles.
    turn: Arc<tokio::sync::Mutex<()>>,
}

pub struct Leader {
    settings: PgSettings,
    replica: String,
    ttl: Duration,
    client: Option<Client>,
    orgs: Vec<OrgLease>,
    health: Arc<Health>,
    /// `run` shares the organisations with the other replicas; `once` (and a test) holds
    /// only what it took.
    share: bool,
}

impl Leader {
    /// The leader of a replica watching the organisations of `fences` (each with the fence
    /// its watcher's commits carry); `share`: among the other replicas (`run`).
    pub fn new(
        settings: PgSettings,
        replica: &str,
        ttl: Duration,
        health: Arc<Health>,
        fences: &[(String, Arc<Mutex<Fence>>)],
        share: bool,
    ) -> Leader {
        let orgs = fences
            .iter()
            .map(|(org, fence)| {
                health.set_led(org, None);
                metrics::gauge!(ORGANISATION_LEADER, "organisation" => org.clone()).set(0.0);
                OrgLease {
                    org: org.clone(),
                    lease: Leadership::new(&lease_of(org), replica, ttl),
                    token: None,
                    published: watch::channel(Standing {
                        token: None,
                        leader: None,
                        valid_until: None,
                    })
                    .0,
                    fence: fence.clone(),
                    turn: Arc::new(tokio::sync::Mutex::new(())),
                }
            })
            .collect();
        let leader = Leader {
            settings,
            replica: replica.to_owned(),
            ttl,
            client: None,
            orgs,
            health,
            share,
        };
        leader.publish_role();
        leader
    }

    /// Where this replica stands for each organisation, for the poll loops.
    pub fn handle(&self) -> LeaderHandle {
        LeaderHandle {
            orgs: Arc::new(
                self.orgs
                    .iter()
                    .map(|org| {
                        let handle = OrgHandle {
                            standing: org.published.subscribe(),
                            turn: org.turn.clone(),
                        };
                        (org.org.clone(), handle)
                    })
                    .collect(),
            ),
        }
    }

    /// Steps every third of a lease until `stop`, then gives every lease up so that the
    /// other replicas need not wait for them.
    pub fn spawn(mut self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let period = self.ttl / 3;
            loop {
                self.step().await;
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = stop.changed() => break,
                }
            }
            self.release_all().await;
        })
    }

    /// Takes the lease of each of `orgs` (`once`), or none: when another replica leads
    /// one of them, gives back what it took and says who leads.
    pub async fn take(&mut self, orgs: &[&str]) -> Result<(), anyhow::Error> {
        let asked = Instant::now();
        let client = self.connect().await?;
        for org in orgs {
            let Some(at) = self.orgs.iter().position(|o| o.org == *org) else {
                continue;
            };
            let lease = self.orgs[at].lease.clone();
            match lease.acquire(&client).await? {
                Some(held) => self.lead(at, held.token, asked),
                None => {
                    let leader = lease::holder(&client, &lease.name)
                        .await
                        .ok()
                        .flatten()
                        .map_or("unknown".to_owned(), |holder| holder.holder);
                    self.client = Some(client);
                    self.release_all().await;
                    return Err(Refused {
                        org: (*org).to_owned(),
                        leader,
                    }
                    .into());
                }
            }
        }
        self.client = Some(client);
        self.publish_role();
        Ok(())
    }

    async fn connect(&mut self) -> Result<Client, StoreError> {
        match self.client.take() {
            Some(client) if !client.is_closed() => Ok(client),
            _ => postgres::connect(&self.settings).await,
        }
    }

    /// Renews what this replica holds, and shares the rest out; publishes the outcome.
    pub async fn step(&mut self) {
        let asked = Instant::now();
        match self.exchange(asked).await {
            Ok(()) => self.health.lease_checked(self.ttl),
            Err(error) => {
                warn!(error = %error, "cannot reach the database for the leases");
                for at in 0..self.orgs.len() {
                    let previous = self.orgs[at].published.borrow().clone();
                    // A lease in force by the local clock stays ours until it lapses; the
                    // fence guards the rest.
                    if !previous.leads() {
                        let leader = previous.leader.filter(|l| *l != self.replica);
                        self.stand_by(at, leader);
                    }
                }
            }
        }
        self.publish_role();
    }

    async fn exchange(&mut self, asked: Instant) -> Result<(), StoreError> {
        let client = self.connect().await?;
        let held: Vec<String> = self
            .orgs
            .iter()
            .filter(|org| org.token.is_some())
            .map(|org| org.lease.name.clone())
            .collect();
        let renewed: HashMap<String, i64> =
            lease::renew_held(&client, &held, &self.replica, self.ttl)
                .await?
                .into_iter()
                .collect();
        let tokens: Vec<Option<i64>> = self
            .orgs
            .iter()
            .map(|org| renewed.get(&org.lease.name).copied())
            .collect();
        for (at, token) in tokens.into_iter().enumerate() {
            match token {
                Some(token) => self.lead(at, token, asked),
                None if self.orgs[at].token.is_some() => self.stand_by(at, None),
                None => {}
            }
        }
        if !self.share {
            self.client = Some(client);
            return Ok(());
        }
        let replicas = lease::announce(&client, &self.replica, self.ttl).await?;
        let names: Vec<String> = self.orgs.iter().map(|o| o.lease.name.clone()).collect();
        let holders: HashMap<String, String> = lease::live_holders(&client, &names)
            .await?
            .into_iter()
            .collect();
        let holder_of = |name: &str| holders.get(name).cloned();
        let seen: Vec<Seen> = self
            .orgs
            .iter()
            .map(|org| Seen {
                org: org.org.clone(),
                // A lease in this replica's name that it does not know it holds (a
                // previous life under the same name) is taken again like a free one.
                holder: holder_of(&org.lease.name)
                    .filter(|holder| org.token.is_some() || *holder != self.replica),
            })
            .collect();
        let plan = share::plan(&self.replica, &replicas, &seen);
        for org in &plan.give_up {
            self.give_up(&client, org).await?;
        }
        let mut held = self.orgs.iter().filter(|o| o.token.is_some()).count();
        for org in &plan.take {
            if held >= plan.share {
                break;
            }
            let Some(at) = self.orgs.iter().position(|o| o.org == *org) else {
                continue;
            };
            if let Some(taken) = self.orgs[at].lease.clone().acquire(&client).await? {
                self.lead(at, taken.token, asked);
                held += 1;
            }
        }
        // Standbys learn who leads each organisation they do not.
        for at in 0..self.orgs.len() {
            if self.orgs[at].token.is_none() {
                let leader = holder_of(&self.orgs[at].lease.name);
                self.stand_by(at, leader);
            }
        }
        self.client = Some(client);
        Ok(())
    }

    /// Gives `org`'s lease up if its poll loop is between cycles (else at a later step).
    async fn give_up(&mut self, client: &Client, org: &str) -> Result<(), StoreError> {
        let Some(at) = self.orgs.iter().position(|o| o.org == org) else {
            return Ok(());
        };
        let Ok(_turn) = self.orgs[at].turn.clone().try_lock_owned() else {
            return Ok(());
        };
        let Some(token) = self.orgs[at].token else {
            return Ok(());
        };
        self.stand_by(at, None);
        let lease = self.orgs[at].lease.clone();
        if lease.release(client, token).await? {
            info!(organisation = %org, "gave the lease up: another replica takes its share");
        }
        Ok(())
    }

    /// This replica leads `orgs[at]` with `token` (taken or renewed at `asked`).
    fn lead(&mut self, at: usize, token: i64, asked: Instant) {
        let replica = self.replica.clone();
        let ttl = self.ttl;
        let org = &mut self.orgs[at];
        if org.token != Some(token) {
            if let Some(old) = org.token {
                warn!(organisation = %org.org, old_token = old, token, "the lease lapsed and was taken again");
            }
            info!(organisation = %org.org, replica = %replica, token, "this replica now leads: it polls");
            metrics::counter!(LEADERSHIP_CHANGES, "change" => "acquired").increment(1);
            self.health.set_led(&org.org, Some(now_ms()));
        }
        org.token = Some(token);
        *org.fence.lock().unwrap_or_else(|p| p.into_inner()) = Fence {
            lease: org.lease.name.clone(),
            token,
        };
        metrics::gauge!(ORGANISATION_LEADER, "organisation" => org.org.clone()).set(1.0);
        // The lease runs from the database's clock at the renewal, which is later than
        // `asked`: counting from `asked`, with a margin, errs early.
        let margin = (ttl / 5).min(Duration::from_secs(1));
        org.published.send_replace(Standing {
            token: Some(token),
            leader: Some(replica),
            valid_until: Some(asked + ttl - margin),
        });
    }

    /// This replica does not lead `orgs[at]`; `leader` does, if known.
    fn stand_by(&mut self, at: usize, leader: Option<String>) {
        let org = &mut self.orgs[at];
        if org.token.take().is_some() {
            warn!(organisation = %org.org, replica = %self.replica, leader = ?leader, "this replica lost the lead: it stops polling");
            metrics::counter!(LEADERSHIP_CHANGES, "change" => "lost").increment(1);
            self.health.set_led(&org.org, None);
        }
        *org.fence.lock().unwrap_or_else(|p| p.into_inner()) = no_fence(&org.org);
        metrics::gauge!(ORGANISATION_LEADER, "organisation" => org.org.clone()).set(0.0);
        let standing = Standing {
            token: None,
            leader,
            valid_until: None,
        };
        org.published.send_if_modified(|current| {
            let changed = *current != standing;
            *current = standing;
            changed
        });
    }

    /// Leader while this replica leads any organisation, else standby (naming who leads
    /// the first).
    fn publish_role(&self) {
        let leads = self.orgs.iter().any(|org| org.token.is_some());
        let role = if leads {
            Role::Leader {
                replica: self.replica.clone(),
            }
        } else {
            Role::Standby {
                replica: self.replica.clone(),
                leader: self
                    .orgs
                    .first()
                    .and_then(|org| org.published.borrow().leader.clone()),
            }
        };
        self.health.set_role(role);
        metrics::gauge!(LEADER).set(if leads { 1.0 } else { 0.0 });
    }

    /// Gives every lease up, and counts this replica out: a clean stop hands over at once.
    async fn release_all(&mut self) {
        let held: Vec<(usize, i64)> = self
            .orgs
            .iter()
            .enumerate()
            .filter_map(|(at, org)| Some((at, org.token?)))
            .collect();
        for (at, _) in &held {
            self.stand_by(*at, None);
        }
        self.publish_role();
        let Ok(client) = self.connect().await else {
            if !held.is_empty() {
                warn!("cannot give the leases up; they lapse by themselves");
            }
            return;
        };
        let mut given = 0;
        for (at, token) in held {
            match self.orgs[at].lease.release(&client, token).await {
                Ok(true) => given += 1,
                Ok(false) => {}
                Err(error) => {
                    warn!(error = %error, "cannot give a lease up; it lapses by itself")
                }
            }
        }
        if self.share
            && let Err(error) = lease::leave(&client, &self.replica).await
        {
            warn!(error = %error, "cannot count this replica out; the others will in a lease");
        }
        if given > 0 {
            info!(
                leases = given,
                "leases given up: the other replicas take over now"
            );
        }
    }
}
