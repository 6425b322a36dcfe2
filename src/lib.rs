//! sdm-watch: watches Akeneo Supplier Data Manager jobs and alerts when they finish, fail
//! or wait for someone. `ARCHITECTURE.md` is the map of these modules and of the
//! direction their imports may take.

pub mod actions; // what operators do to the alerts (silences, retries), each with its audit entry
pub mod backoff; // exponential backoff with jitter, from plain values
pub mod commands; // what each subcommand does, over the modules below
pub mod config; // typed configuration: file, environment, secrets, one file per section
pub mod console; // the status page and /status.json, from the store's read connection
pub mod daemon; // wiring for `run` and `once`
pub mod domain; // statuses, ids, rows, the clock and date formats: the shared words
pub mod httpd; // a small HTTP/1.1 server for the ops endpoints and the simulator
pub mod notify; // alerts: building, routing, webhook and e-mail senders, delivery worker
pub mod ops; // logging, signals, health and metrics endpoints, systemd
pub mod output; // output data of done jobs: download, save, summarise, expire
pub mod poll;
pub mod report; // what happened over a period: per project, error signatures, slowest, waiting
pub mod roots; // the TLS roots HTTP clients trust, and working on a system without any
pub mod rows; // output rows: column union and CSV
pub mod sdm; // the SDM jobs API client
pub mod sim; // a simulated SDM API and webhook receiver for tests, `demo` and benchmarks
pub mod store; // SQLite or PostgreSQL: tracked jobs, held changes, the alert outbox, bookkeeping
pub mod telemetry; // the names of every metric and the Prometheus recorder
pub mod template; // message templates (MiniJinja): compile, check, render with escaping // poll cycles: what to list (pure), transitions (pure), reading and committing
