//! What delivery needs that a reload may replace: the channels, the retry rules, the
//! digests' and time windows' rules, the scheduled reports. The worker, the resender and
//! the reporter each read the current one.

use std::collections::HashMap;
use std::time::Duration;

use super::Channels;
use crate::backoff::Backoff;
use crate::config::{Grouping, Hours, ReportConfig};

/// What delivery needs that a reload may replace.
pub struct DeliverySetup {
    pub channels: Channels,
    pub backoff: Backoff,
    pub max_age: Duration,
    /// Attempts in flight at once (`delivery.concurrency`).
    pub concurrency: usize,
    /// The channels that gather their alerts into digests.
    pub groupings: HashMap<String, Grouping>,
    /// The channels with `active_during` windows: outside them, alerts are held.
    pub hours: HashMap<String, Hours>,
    /// The scheduled reports (`[[report]]`).
    pub reports: Vec<ReportConfig>,
    /// How long a claim keeps other replicas off an alert: longer than an attempt lasts.
    pub claim_ttl: Duration,
}
