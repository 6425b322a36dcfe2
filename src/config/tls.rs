//! `[http] tls_cert_file` / `tls_key_file`: HTTPS on `http.listen`. Both or neither; the
//! certificate chain (PEM, the server's first) and its private key (PEM: PKCS#8, PKCS#1
//! or SEC1) are read and checked to belong together at load, and again on SIGHUP.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;

/// The certificate and key files, and the server configuration they make.
#[derive(Clone, Serialize)]
pub struct Tls {
    #[serde(rename = "tls_cert_file")]
    pub cert_file: PathBuf,
    #[serde(rename = "tls_key_file")]
    pub key_file: PathBuf,
    #[serde(skip)]
    pub server: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tls({}, {})",
            self.cert_file.display(),
            self.key_file.display()
        )
    }
}

/// Which of the two files a problem is with.
pub enum TlsError {
    Cert(String),
    Key(String),
}

impl Tls {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Tls, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
            .map_err(|e| TlsError::Cert(format!("cannot read {}: {e}", cert_file.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| {
                TlsError::Cert(format!(
                    "{} is not PEM certificates: {e}",
                    cert_file.display()
                ))
            })?;
        if certs.is_empty() {
            return Err(TlsError::Cert(format!(
                "{} holds no certificate",
                cert_file.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
            TlsError::Key(format!(
                "{} holds no private key in PEM: {e}",
                key_file.display()
            ))
        })?;
        let provider = crate::roots::crypto();
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Cert(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                TlsError::Key(format!(
                    "does not go with the certificate in {}: {e}",
                    cert_file.display()
                ))
            })?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            server: Arc::new(server),
        })
    }
}
