//! Leadership among replicas sharing PostgreSQL: one task per replica takes the lease
//! when it is free, renews it on a timer (a third of the lease) and whenever the poll loop
//! asks before a cycle, and publishes where this replica stands. The leader's store handle
//! is fenced with the token it holds, so a leader that lost the lease (paused, cut off)
//! commits nothing after another took over; the poll loop also drops a cycle in flight
//! once the lease may have lapsed by its own clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_postgres::Client;
use tracing::{info, warn};

use crate::ops::health::{Health, Role};
use crate::store::postgres::lease::{self, Leadership};
use crate::store::postgres::{self, PgSettings};
use crate::store::{Fence, StoreError};
use crate::telemetry::{LEADER, LEADERSHIP_CHANGES};

/// The lease the poller holds.
pub const LEASE: &str = "poller";

/// Where this replica stands, as last learnt from the database.
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

/// The fence a standby's watcher carries: no lease ever has token 0, so nothing commits.
pub fn no_fence() -> Fence {
    Fence {
        lease: LEASE.to_owned(),
        token: 0,
    }
}

pub struct Leader {
    settings: PgSettings,
    lease: Leadership,
    client: Option<Client>,
    token: Option<i64>,
    published: watch::Sender<Standing>,
    health: Arc<Health>,
    fence: Arc<Mutex<Fence>>,
}

/// The poll loops' side: where this replica stands, and a way to renew before a cycle.
#[derive(Clone)]
pub struct LeaderHandle {
    pub standing: watch::Receiver<Standing>,
    asks: mpsc::Sender<oneshot::Sender<Standing>>,
}

impl LeaderHandle {
    /// Takes or renews the lease now and says where this replica stands.
    pub async fn renew(&self) -> Standing {
        let (reply, answer) = oneshot::channel();
        if self.asks.send(reply).await.is_err() {
            return self.standing.borrow().clone();
        }
        answer
            .await
            .unwrap_or_else(|_| self.standing.borrow().clone())
    }
}

impl Leader {
    pub fn new(
        settings: PgSettings,
        replica: &str,
        ttl: Duration,
        health: Arc<Health>,
        fence: Arc<Mutex<Fence>>,
    ) -> (Leader, watch::Receiver<Standing>) {
        let (published, standing) = watch::channel(Standing {
            token: None,
            leader: None,
            valid_until: None,
        });
        health.set_role(Role::Standby {
            replica: replica.to_owned(),
            leader: None,
        });
        metrics::gauge!(LEADER).set(0.0);
        let leader = Leader {
            settings,
            lease: Leadership::new(LEASE, replica, ttl),
            client: None,
            token: None,
            published,
            health,
            fence,
        };
        (leader, standing)
    }

    /// Runs until `stop`, then gives the lease up so that a standby need not wait for it.
    pub fn spawn(
        mut self,
        mut stop: watch::Receiver<bool>,
    ) -> (LeaderHandle, tokio::task::JoinHandle<()>) {
        let (asks, mut asked) = mpsc::channel::<oneshot::Sender<Standing>>(4);
        let handle = LeaderHandle {
            standing: self.published.subscribe(),
            asks,
        };
        let task = tokio::spawn(async move {
            let period = self.lease.ttl / 3;
            let mut next = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {
                        self.step().await;
                        next = Instant::now() + period;
                    }
                    Some(reply) = asked.recv() => {
                        let standing = self.step().await;
                        let _ = reply.send(standing);
                        next = Instant::now() + period;
                    }
                    _ = stop.changed() => break,
                }
            }
            self.release().await;
        });
        (handle, task)
    }

    async fn client(&mut self) -> Result<&Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(postgres::connect(&self.settings).await?);
        }
        Ok(self.client.as_ref().expect("connected above"))
    }

    /// Takes the lease if free, renews it if held; publishes the outcome.
    pub async fn step(&mut self) -> Standing {
        let asked = Instant::now();
        let lease = self.lease.clone();
        let outcome = match self.client().await {
            Ok(client) => lease.acquire(client).await,
            Err(error) => Err(error),
        };
        let replica = self.lease.holder.clone();
        let standing = match outcome {
            Ok(Some(held)) => {
                if self.token != Some(held.token) {
                    if let Some(old) = self.token {
                        warn!(
                            old_token = old,
                            token = held.token,
                            "the lease lapsed and was taken again"
                        );
                    }
                    info!(replica = %replica, token = held.token, "this replica now leads: it polls");
                    metrics::counter!(LEADERSHIP_CHANGES, "change" => "acquired").increment(1);
                }
                self.token = Some(held.token);
                *self.fence.lock().unwrap_or_else(|p| p.into_inner()) = Fence {
                    lease: LEASE.to_owned(),
                    token: held.token,
                };
                self.health.set_role(Role::Leader {
                    replica: replica.clone(),
                });
                metrics::gauge!(LEADER).set(1.0);
                // The lease runs from the database's clock at the renewal, which is later
                // than `asked`: counting from `asked`, with a margin, errs early.
                let margin = (self.lease.ttl / 5).min(Duration::from_secs(1));
                Standing {
                    token: Some(held.token),
                    leader: Some(replica.clone()),
                    valid_until: Some(asked + self.lease.ttl - margin),
                }
            }
            Ok(None) => {
                let holder = match self.client().await {
                    Ok(client) => lease::holder(client, LEASE).await.ok().flatten(),
                    Err(_) => None,
                };
                let leader = holder.filter(|h| h.live).map(|h| h.holder);
                self.stand_by(leader)
            }
            Err(error) => {
                warn!(error = %error, "cannot reach the database for the lease");
                self.client = None;
                let previous = self.published.borrow().clone();
                if previous.leads() {
                    // Still ours until it lapses by the local clock; the fence guards the rest.
                    previous
                } else {
                    let leader = previous.leader.filter(|l| *l != replica);
                    let standing = self.stand_by(leader);
                    // Unreachable: not a healthy standby.
                    return standing;
                }
            }
        };
        if standing.token.is_none() {
            self.health.lease_checked(self.lease.ttl);
        }
        self.published.send_replace(standing.clone());
        standing
    }

    fn stand_by(&mut self, leader: Option<String>) -> Standing {
        let replica = self.lease.holder.clone();
        if self.token.take().is_some() {
            warn!(replica = %replica, leader = ?leader, "this replica lost the lead: it stops polling");
            metrics::counter!(LEADERSHIP_CHANGES, "change" => "lost").increment(1);
        }
        *self.fence.lock().unwrap_or_else(|p| p.into_inner()) = no_fence();
        self.health.set_role(Role::Standby {
            replica,
            leader: leader.clone(),
        });
        metrics::gauge!(LEADER).set(0.0);
        let standing = Standing {
            token: None,
            leader,
            valid_until: None,
        };
        self.published.send_replace(standing.clone());
        standing
    }

    /// Gives the lease up, if held: a clean stop hands over at once.
    async fn release(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        *self.fence.lock().unwrap_or_else(|p| p.into_inner()) = no_fence();
        let lease = self.lease.clone();
        if let Ok(client) = self.client().await {
            match lease.release(client, token).await {
                Ok(true) => info!("lease given up: a standby takes over now"),
                Ok(false) => {}
                Err(error) => {
                    warn!(error = %error, "cannot give the lease up; it lapses by itself")
                }
            }
        }
    }
}
