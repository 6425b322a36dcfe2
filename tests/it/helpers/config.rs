//! Configs for a simulator, and API clients built from them.

use std::path::Path;

use sdm_watch::config::Config;
use sdm_watch::sdm::SdmClient;
use sdm_watch::sim::Simulator;

/// A config for `sim` with fast retries. `api_extra` is more `[api]` keys; `extra` is
/// appended TOML and must open with a section header.
pub fn config_text(sim: &Simulator, api_extra: &str, extra: &str) -> String {
    format!(
        r#"
[api]
base_url = "{base}"
token = "{token}"
timeout = "2s"
max_requests_per_second = 10
{api_extra}
[retry]
initial_interval = "50ms"
max_interval = "200ms"
max_elapsed = "5s"

[http]
listen = ""
{extra}
"#,
        base = sim.base_url(),
        token = sim.token(),
    )
}

pub fn config(text: &str) -> Config {
    Config::from_toml(text, Path::new("test.toml")).expect("test config is valid")
}

pub fn client_with(text: &str) -> SdmClient {
    let config = config(text);
    SdmClient::new(&config.organisations[0].api, &config.retry).expect("client builds")
}

pub fn client(sim: &Simulator) -> SdmClient {
    client_with(&config_text(sim, "", ""))
}

/// A config for a daemon whose console listens on `listen`, polling `sim` every second
/// into a state under `dir`; `http_extra` is more `[http]` keys (`users_file`, TLS) and
/// `extra` appended TOML (channels).
pub fn console_config(
    sim: &Simulator,
    dir: &Path,
    listen: &str,
    http_extra: &str,
    extra: &str,
) -> String {
    config_text(
        sim,
        "",
        &format!(
            "[poll]\ninterval = \"1s\"\n[state]\npath = \"{}\"\n{extra}",
            dir.join("state.db").display()
        ),
    )
    .replace(
        "listen = \"\"",
        &format!("listen = \"{listen}\"\n{http_extra}"),
    )
}
