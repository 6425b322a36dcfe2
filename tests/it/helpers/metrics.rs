//! A daemon's `/metrics`, as Prometheus would scrape it.

/// The text of `http://{listen}/metrics`; panics if the daemon does not answer.
pub async fn scrape(listen: impl std::fmt::Display) -> String {
    crate::http()
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET http://{listen}/metrics: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("the body of http://{listen}/metrics: {e}"))
}

/// The value of the unlabelled series `name` in `text`, if it is there.
pub fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
