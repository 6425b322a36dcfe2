//! What a webhook receiver got, against the changes that should have been alerted: each
//! `(job, status)` at least once, a repeat only with the first delivery's `webhook-id`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sdm_watch::sim::{ReceivedWebhook, WebhookReceiver};

/// The `(job id, status)` a standard webhook delivery tells.
pub fn told(hook: &ReceivedWebhook) -> (String, String) {
    let body = hook.json();
    let job = &body["data"]["job"];
    let text = |key: &str| job[key].as_str().unwrap_or_default().to_owned();
    (text("id"), text("status"))
}

/// How many changes in `expected` (job id to status) no delivery told yet.
pub fn owed(delivered: &[ReceivedWebhook], expected: &HashMap<String, String>) -> usize {
    let told: HashSet<(String, String)> = delivered.iter().map(told).collect();
    expected
        .iter()
        .filter(|(job, status)| !told.contains(&((*job).clone(), (*status).clone())))
        .count()
}

/// Waits until every change in `expected` was delivered (or `timeout` passed), then a
/// moment more so that whatever was in flight lands; returns all deliveries.
pub async fn wait_for(
    hook: &WebhookReceiver,
    expected: &HashMap<String, String>,
    timeout: Duration,
) -> Vec<ReceivedWebhook> {
    let deadline = tokio::time::Instant::now() + timeout;
    while owed(&hook.delivered(), expected) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    hook.delivered()
}

/// Every change in `expected` was delivered, nothing else was, and a repeated delivery
/// carries the first one's `webhook-id`. Returns how many deliveries were repeats.
pub fn assert_each_once(
    delivered: &[ReceivedWebhook],
    expected: &HashMap<String, String>,
) -> usize {
    let mut first_id: HashMap<(String, String), String> = HashMap::new();
    let mut repeats = 0;
    for hook in delivered {
        let key = told(hook);
        let id = hook.header("webhook-id").expect("a webhook-id").to_owned();
        match first_id.get(&key) {
            Some(first) => {
                repeats += 1;
                assert_eq!(
                    first, &id,
                    "a repeated delivery carries the first one's webhook-id"
                );
            }
            None => {
                first_id.insert(key, id);
            }
        }
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|(job, status)| !first_id.contains_key(&((*job).clone(), (*status).clone())))
        .collect();
    assert!(missing.is_empty(), "never alerted: {missing:?}");
    let unexpected: Vec<_> = first_id
        .keys()
        .filter(|(job, status)| expected.get(job) != Some(status))
        .collect();
    assert!(
        unexpected.is_empty(),
        "alerted, but the change never happened: {unexpected:?}"
    );
    repeats
}

/// For `lifetime`, every 20 to 150 ms, turns one of `waiting` (running jobs) `done`,
/// `error` or `pending` at random, recording each change in `expected`.
pub async fn change_for(
    sim: &sdm_watch::sim::Simulator,
    rng: &mut fastrand::Rng,
    waiting: &mut Vec<String>,
    expected: &mut HashMap<String, String>,
    lifetime: Duration,
    message: &str,
) {
    use sdm_watch::domain::Status;
    let deadline = tokio::time::Instant::now() + lifetime;
    while tokio::time::Instant::now() < deadline {
        if let Some(id) =
            (!waiting.is_empty()).then(|| waiting.swap_remove(rng.usize(..waiting.len())))
        {
            let status = [Status::Done, Status::Error, Status::Pending][rng.usize(..3)].clone();
            sim.set_status(&id, status.clone(), Some(message));
            expected.insert(id, status.to_string());
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(20..150))).await;
    }
}
