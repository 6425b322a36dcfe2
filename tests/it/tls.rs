//! HTTPS is always verified: a server whose certificate no trusted root vouches for is
//! refused, for the API and for webhooks, unless its CA is named with `ca_file`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sdm_watch::sdm::JobFilter;
use tokio_rustls::rustls;

use testkit::cli::{sdm_watch, stdout};
use testkit::config::client_with;
use testkit::smtp::SmtpSink;

/// An HTTPS server on loopback with a fresh self-signed certificate; answers every request
/// with an empty job page. Returns its port, the certificate (PEM) and a request counter.
async fn self_signed_server() -> (u16, String, Arc<AtomicUsize>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let provider = sdm_watch::roots::crypto();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(socket).await else {
                    return;
                };
                let service = service_fn(move |_request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(
                                br#"{"count": 0, "next": null, "previous": null, "results": []}"#,
                            ),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (port, cert_pem, served)
}

fn api_config(port: u16, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    format!(
        "[api]\nbase_url = \"https://127.0.0.1:{port}/api/v1/\"\ntoken = \"tok\"\ntimeout = \"2s\"\n{ca}\
         [retry]\ninitial_interval = \"50ms\"\nmax_interval = \"100ms\"\nmax_elapsed = \"300ms\"\n[http]\nlisten = \"\"\n"
    )
}

#[tokio::test]
async fn the_api_over_https_is_refused_unless_its_ca_is_configured() {
    let (port, cert_pem, served) = self_signed_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();

    let error = client_with(&api_config(port, None))
        .list_jobs(&JobFilter::default())
        .await
        .unwrap_err();
    let message = format!("{error:#}").to_ascii_lowercase();
    assert!(
        message.contains("certificate") || message.contains("unknownissuer"),
        "{message}"
    );
    assert_eq!(
        served.load(Ordering::SeqCst),
        0,
        "no request got through an unverified connection"
    );

    let jobs = client_with(&api_config(port, Some(&ca)))
        .list_jobs(&JobFilter::default())
        .await
        .expect("trusted with api.ca_file");
    assert!(jobs.is_empty());
    assert_eq!(served.load(Ordering::SeqCst), 1);

    std::fs::write(&ca, "not a certificate").unwrap();
    let output = sdm_watch(&api_config(port, Some(&ca)), &["check"], &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("api.ca_file"));
}

#[tokio::test]
async fn webhooks_over_https_are_refused_unless_their_ca_is_configured() {
    let (port, cert_pem, served) = self_signed_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();
    let hook = |ca: &str| {
        format!(
            "[api]\ntoken = \"t\"\n[http]\nlisten = \"\"\n[[webhook]]\nname = \"secure\"\nurl = \"https://127.0.0.1:{port}/hook\"\ntimeout = \"2s\"\n{ca}"
        )
    };
    let output = sdm_watch(&hook(""), &["test-alert"], &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("FAILED  webhook secure"),
        "{}",
        stdout(&output)
    );
    assert_eq!(served.load(Ordering::SeqCst), 0);

    let output = sdm_watch(
        &hook(&format!("ca_file = \"{}\"\n", ca.display())),
        &["test-alert"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn smtp_over_tls_is_refused_unless_its_ca_is_configured() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let smtp = SmtpSink::start_tls(cert.to_str().unwrap(), key.to_str().unwrap());
    let config = |ca: &str| {
        format!(
            "[api]\ntoken = \"t\"\n[http]\nlisten = \"\"\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\ntimeout = \"5s\"\nfrom = \"a@b.example\"\n{ca}[[email]]\nname = \"mail\"\nto = [\"ops@example.com\"]\n",
            smtp.addr.port()
        )
    };
    let output = sdm_watch(&config(""), &["test-alert"], &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("FAILED  email mail"),
        "{}",
        stdout(&output)
    );
    assert!(smtp.mails().is_empty());

    let output = sdm_watch(
        &config(&format!("ca_file = \"{}\"\n", cert.display())),
        &["test-alert"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        smtp.wait_for(1, std::time::Duration::from_secs(5))
            .await
            .len(),
        1
    );
}
