//! A proptest runner for the model-based tests (`differential.rs`, `grouping.rs`): a number
//! of cases from an environment variable, and a fixed seed so that CI checks the same
//! histories every run while a long run can ask for others.

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// `name` from the environment, as a number, if set and one.
pub fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|n| n.parse().ok())
}

/// A runner of `cases` cases from `seed`, shrinking a failure at most `max_shrink_iters`
/// times, never writing failures to files.
pub fn runner(cases: u32, seed: u64, max_shrink_iters: u32) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            max_shrink_iters,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}
