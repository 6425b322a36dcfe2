//! HTTPS on `http.listen` (issue 26) with a test CA: the page, an action and
//! `sdm-watch healthcheck` over TLS; a certificate swapped and SIGHUP sent is served to the
//! next connection without a restart; a key that does not go with its certificate keeps
//! the old pair (and exits 2 at start), as does half a pair.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls;

use sdm_watch::sim::Simulator;
use testkit::cli::{sdm_watch, stderr, stdout};
use testkit::config::console_config;
use testkit::console::{csrf_token, signed_in_page};
use testkit::{Daemon, ports};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sdm-watch test CA");
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for 127.0.0.1 signed by `ca`: its PEM, its key's PEM, its DER.
fn server_cert(ca: &Ca, name: &str) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// The certificate a new TLS connection to `port` is served, trusting only `ca`.
async fn served_certificate(ca: &Ca, port: u16) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = sdm_watch::roots::crypto();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

use rustls::pki_types::pem::PemObject;

#[tokio::test]
async fn the_console_over_https_and_a_certificate_renewed_on_sighup() {
    let sim = Simulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (cert_a, key_a, der_a) = server_cert(&ca, "first");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert_a).unwrap();
    std::fs::write(&key_path, &key_a).unwrap();
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        format!("alice:{}\n", bcrypt::hash("pw", 4).unwrap()),
    )
    .unwrap();
    let port = ports::free();
    let http = format!(
        "users_file = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
        users.display(),
        cert_path.display(),
        key_path.display()
    );
    let text = console_config(&sim, dir.path(), &format!("127.0.0.1:{port}"), &http, "");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("scheme=\"https\"", 1).await;
    daemon.wait_for_log("poll cycle done", 1).await;

    let client = testkit::http_with(|builder| {
        builder.add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
    });
    let base = format!("https://127.0.0.1:{port}");
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000",
        "over TLS, browsers are told to keep to HTTPS"
    );
    let token = csrf_token(&signed_in_page(&client, &base, "alice", "pw").await);
    let silenced = client
        .post(format!("{base}/actions/silence"))
        .basic_auth("alice", Some("pw"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={token}&scope=project&target=17&for=1h&reason=tls"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(silenced.status(), 200);
    assert!(silenced.text().await.unwrap().contains("Silenced"));
    let plain = testkit::http()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "no plain HTTP"
    );
    let check = sdm_watch(&text, &["healthcheck"], &[]).await;
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).contains("/healthz: ok"));
    assert_eq!(served_certificate(&ca, port).await, der_a);

    // Renewed: new files, SIGHUP; the next connection gets the new certificate.
    let (cert_b, key_b, der_b) = server_cert(&ca, "second");
    std::fs::write(&cert_path, &cert_b).unwrap();
    std::fs::write(&key_path, &key_b).unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(
        served_certificate(&ca, port).await,
        der_b,
        "served without a restart"
    );

    // A key of another certificate: refused on SIGHUP, the pair served stays.
    std::fs::write(&key_path, &key_a).unwrap();
    daemon.signal("HUP");
    daemon
        .wait_for_log("keeping the old configuration", 1)
        .await;
    let why = daemon
        .lines_with("keeping the old configuration")
        .join("\n");
    assert!(why.contains("http.tls_key_file"), "{why}");
    assert_eq!(served_certificate(&ca, port).await, der_b);
    daemon.stop().await;

    let mismatched = sdm_watch(&text, &["check"], &[]).await;
    assert_eq!(mismatched.status.code(), Some(2));
    assert!(
        stderr(&mismatched).contains("http.tls_key_file"),
        "{}",
        stderr(&mismatched)
    );
    let half = text.replace(&format!("\ntls_key_file = \"{}\"", key_path.display()), "");
    let half = sdm_watch(&half, &["check"], &[]).await;
    assert_eq!(half.status.code(), Some(2));
    assert!(
        stderr(&half).contains("http.tls_key_file: is missing"),
        "{}",
        stderr(&half)
    );
}
