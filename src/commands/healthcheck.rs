//! `sdm-watch healthcheck`: the container's HEALTHCHECK, with no tool the image lacks;
//! over HTTPS when `http.tls_cert_file` is set.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Config;

pub async fn run(config: &Config, ready: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let Some(listen) = config.http.listen else {
        anyhow::bail!("http.listen is \"\": the daemon serves no health endpoint to check");
    };
    let path = if ready { "/readyz" } else { "/healthz" };
    let scheme = if config.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{}{path}", reachable(listen));
    // Over HTTPS the certificate is not checked: this asks the daemon's own listener
    // (on loopback for a wildcard address) and sends nothing secret.
    let response = crate::roots::client(&[], |builder| {
        builder
            .timeout(Duration::from_secs(5))
            .danger_accept_invalid_certs(true)
    })?
    .get(&url)
    .send()
    .await
    .map_err(|e| anyhow::anyhow!("{url}: {}", crate::domain::error_chain(&e.without_url())))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", body.trim());
    }
    writeln!(out, "{path}: {}", body.trim())?;
    Ok(())
}

/// A wildcard listen address is reached on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}
