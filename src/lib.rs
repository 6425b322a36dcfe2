//! sdm-watch: watches Akeneo Supplier Data Manager jobs and alerts when they finish, fail
//! or wait for someone.

pub mod commands; // what each subcommand does, over the modules below
pub mod config; // typed configuration: file, environment, secrets, validation
pub mod ops;
pub mod rows; // output rows: column union and CSV
pub mod sdm; // the SDM jobs API client
pub mod sim; // a simulated SDM API for tests, `demo` and benchmarks // logging (later: health, metrics, signals)
