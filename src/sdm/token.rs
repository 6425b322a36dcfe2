//! The API token a client sends, and where it came from: a token read from
//! `api.token_file` is read again when the API refuses it, so that a rotated token is used
//! without a restart (SIGHUP rebuilds the client from the config as well).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use reqwest::header::HeaderValue;
use tracing::{info, warn};

/// `Token <key>`, marked sensitive so that reqwest never prints it; shared by a client's
/// clones, so that a token read again is used by all of them.
#[derive(Clone, Debug)]
pub(super) struct Token {
    header: Arc<RwLock<HeaderValue>>,
    file: Option<PathBuf>,
}

impl Token {
    /// `None` if the token cannot be sent in an HTTP header.
    pub(super) fn new(token: &str, file: Option<PathBuf>) -> Option<Token> {
        Some(Token {
            header: Arc::new(RwLock::new(auth_header(token)?)),
            file,
        })
    }

    pub(super) fn header(&self) -> HeaderValue {
        self.header
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads `api.token_file` again, on a blocking thread (a file on a slow or hung mount
    /// stalls this request, not the endpoints or the other organisations); true if it held
    /// a new, usable token, which every clone uses from now on. The token itself is never
    /// logged.
    pub(super) async fn reload(&self) -> bool {
        let Some(path) = self.file.clone() else {
            return false;
        };
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || crate::config::read_secret_file(&path)).await
        };
        let header = match read {
            Ok(Ok(token)) => auth_header(token.expose()),
            Err(join) => {
                warn!(error = %join, "the API refused the token and reading api.token_file again failed");
                return false;
            }
            Ok(Err(reason)) => {
                warn!(error = %reason, "the API refused the token and api.token_file cannot be read again");
                return false;
            }
        };
        let Some(header) = header else {
            warn!(file = %path.display(), "the API refused the token and api.token_file holds one that cannot be sent");
            return false;
        };
        let mut current = self
            .header
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *current == header {
            return false;
        }
        *current = header;
        info!(file = %path.display(), "the API refused the token; using the new one api.token_file holds");
        true
    }
}

/// `Token <key>` as a sensitive header, if the token can be sent in one.
fn auth_header(token: &str) -> Option<HeaderValue> {
    let mut header = HeaderValue::from_str(&format!("Token {token}")).ok()?;
    header.set_sensitive(true);
    Some(header)
}
