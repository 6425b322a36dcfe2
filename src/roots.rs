//! The TLS roots every HTTP client trusts: the system's store (Debian's `ca-certificates`),
//! with a configured `ca_file`'s certificates added. A system with no store at all (a
//! minimal root or image without `ca-certificates`) still gets working clients: `http://`
//! URLs work, an `https://` one fails on its request with an unknown-issuer error, and the
//! log says why once, instead of the process refusing to start.
//!
//! One cryptography provider (ring) serves every TLS connection, client and server:
//! [`crypto`] gives it, and [`client`] installs it as the process's default first, which
//! reqwest and lettre then use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Certificate, Client, ClientBuilder};
use rustls::crypto::CryptoProvider;

/// The cryptography every TLS connection uses: the API, receivers, SMTP, PostgreSQL and
/// the console's HTTPS.
pub fn crypto() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes [`crypto`] the process's default, once (clients built by reqwest and lettre take
/// the default).
pub fn install_crypto() {
    if CryptoProvider::get_default().is_none() {
        // Another thread may have installed it in between: either way one is in place.
        let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
    }
}

/// What the log says, once per process, when the system has no CA certificates.
pub const NO_SYSTEM_ROOTS: &str = "the system has no CA certificates (install the \
    ca-certificates package, or set SSL_CERT_FILE): https:// URLs whose certificate is not \
    signed by a configured ca_file will fail; http:// ones work";

/// Builds the client `configure` describes, trusting the system's roots and `extra`; on a
/// system without roots, `extra` alone (see the module's comment).
pub fn client(
    extra: &[Certificate],
    configure: impl Fn(ClientBuilder) -> ClientBuilder,
) -> reqwest::Result<Client> {
    install_crypto();
    let merged = configure(Client::builder().tls_certs_merge(extra.iter().cloned())).build();
    match merged {
        Err(_) if system_store_is_empty() => {
            say_once();
            configure(Client::builder().tls_certs_only(extra.iter().cloned())).build()
        }
        built => built,
    }
}

/// Whether the system's store holds no certificate that parses (reads it: call on errors).
pub fn system_store_is_empty() -> bool {
    rustls_native_certs::load_native_certs().certs.is_empty()
}

fn say_once() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!("{NO_SYSTEM_ROOTS}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test machine has a store; `SSL_CERT_FILE` naming an empty file stands for one
    /// without (rustls-native-certs reads only that file then). The variable is set in a
    /// child process of this test binary, so no other test sees it.
    #[test]
    fn a_system_without_roots_still_gets_a_client() {
        if std::env::var_os("SDM_WATCH_ROOTS_CHILD").is_some() {
            assert!(
                system_store_is_empty(),
                "the empty SSL_CERT_FILE is the store"
            );
            install_crypto();
            assert!(
                Client::builder().build().is_err(),
                "reqwest alone refuses to build"
            );
            client(&[], |builder| builder).expect("a client without system roots");
            return;
        }
        let empty = std::env::temp_dir().join(format!("sdm-watch-no-roots-{}", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "roots::tests::a_system_without_roots_still_gets_a_client",
            ])
            .env("SDM_WATCH_ROOTS_CHILD", "1")
            .env("SSL_CERT_FILE", &empty)
            .env_remove("SSL_CERT_DIR")
            .status()
            .unwrap();
        let _ = std::fs::remove_file(&empty);
        assert!(status.success(), "the child test failed: {status}");
    }
}
