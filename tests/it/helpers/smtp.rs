//! A real SMTP server on loopback (mailin-embedded) that keeps every message it accepts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin_embedded::response::{OK, Response};
use mailin_embedded::{Handler, Server, SslConfig};

#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent: headers, blank line, body.
    pub data: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut lines = self.data.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if line.is_empty() {
                break;
            }
            if line.to_ascii_lowercase().starts_with(&prefix) {
                let mut value = line[prefix.len()..].trim().to_owned();
                // Folded continuation lines.
                while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                }
                return Some(value);
            }
        }
        None
    }

    /// The text body, decoded from quoted-printable or base64 if the sender chose either;
    /// in a multipart message, the first part that is not an attachment.
    pub fn body(&self) -> String {
        match self.parts() {
            Some(parts) => parts
                .into_iter()
                .find(|(headers, _)| !headers.to_ascii_lowercase().contains("attachment"))
                .map(|(headers, body)| decode(&headers, &body))
                .unwrap_or_default(),
            None => {
                let (headers, body) = self.data.split_once("\r\n\r\n").unwrap_or(("", ""));
                decode(headers, body)
            }
        }
    }

    /// The decoded HTML part of a multipart/alternative message.
    pub fn html(&self) -> Option<String> {
        self.parts()?
            .into_iter()
            .find(|(headers, _)| headers.to_ascii_lowercase().contains("text/html"))
            .map(|(headers, body)| decode(&headers, &body))
    }

    /// The decoded content of the attachment named `name`.
    pub fn attachment(&self, name: &str) -> Option<String> {
        self.parts()?
            .into_iter()
            .find(|(headers, _)| headers.contains("attachment") && headers.contains(name))
            .map(|(headers, body)| decode(&headers, &body))
    }

    /// Each part's headers and body, for a multipart message.
    fn parts(&self) -> Option<Vec<(String, String)>> {
        let content_type = self.header("content-type")?;
        let boundary = content_type
            .split("boundary=")
            .nth(1)?
            .trim_matches('"')
            .to_owned();
        let delimiter = format!("--{boundary}");
        Some(
            self.data
                .split(&delimiter)
                .skip(1)
                .filter(|part| !part.starts_with("--"))
                .filter_map(|part| {
                    let part = part.trim_start_matches("\r\n");
                    let (headers, body) = part.split_once("\r\n\r\n")?;
                    // The line break before a delimiter belongs to the delimiter.
                    Some((
                        headers.to_owned(),
                        body.strip_suffix("\r\n").unwrap_or(body).to_owned(),
                    ))
                })
                .collect(),
        )
    }
}

fn decode(headers: &str, body: &str) -> String {
    let encoding = headers
        .split("\r\n")
        .find(|line| {
            line.to_ascii_lowercase()
                .starts_with("content-transfer-encoding:")
        })
        .map(|line| line.split_once(':').unwrap().1.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        Some("quoted-printable") => decode_quoted_printable(body),
        Some("base64") => {
            use base64::Engine as _;
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_owned(),
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'=')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone)]
struct Collector {
    mails: Arc<Mutex<Vec<Mail>>>,
    /// While true, every MAIL command gets a transient 451 (the server is "busy").
    busy: Arc<AtomicBool>,
    /// EHLO/HELO greetings: one per SMTP connection (no STARTTLS in between).
    greetings: Arc<AtomicUsize>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Collector {
    fn helo(&mut self, _ip: std::net::IpAddr, _domain: &str) -> Response {
        self.greetings.fetch_add(1, Ordering::SeqCst);
        OK
    }

    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        if self.busy.load(Ordering::SeqCst) {
            return Response::custom(451, "Busy, try again later".to_owned());
        }
        OK
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.mails.lock().unwrap().push(Mail {
            from: self.from.clone(),
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
        });
        OK
    }
}

/// The server runs on its own thread for the rest of the test binary's life.
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    busy: Arc<AtomicBool>,
    greetings: Arc<AtomicUsize>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        Self::start_on(crate::ports::listener())
    }

    pub fn start_on(listener: std::net::TcpListener) -> SmtpSink {
        Self::start_with(listener, SslConfig::None)
    }

    /// Offers STARTTLS with this certificate and key (PEM files).
    pub fn start_tls(cert_path: &str, key_path: &str) -> SmtpSink {
        // mailin's rustls takes the process's provider: the tests build two (ring for
        // sdm-watch, aws-lc-rs for mailin's own default), so it must be told which.
        sdm_watch::roots::install_crypto();
        Self::start_with(
            crate::ports::listener(),
            SslConfig::SelfSigned {
                cert_path: cert_path.to_owned(),
                key_path: key_path.to_owned(),
            },
        )
    }

    fn start_with(listener: std::net::TcpListener, ssl: SslConfig) -> SmtpSink {
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(AtomicBool::new(false));
        let greetings = Arc::new(AtomicUsize::new(0));
        let mut server = Server::new(Collector {
            mails: mails.clone(),
            busy: busy.clone(),
            greetings: greetings.clone(),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        });
        // A thread per connection, as many as sdm-watch may keep open (the default of 4
        // would hold the rest waiting, unlike a real relay).
        server
            .with_name("localhost")
            .with_num_threads(64)
            .with_ssl(ssl)
            .unwrap()
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpSink {
            addr,
            mails,
            busy,
            greetings,
        }
    }

    /// SMTP sessions opened so far (EHLO or HELO greetings).
    pub fn sessions(&self) -> usize {
        self.greetings.load(Ordering::SeqCst)
    }

    /// Messages accepted so far.
    pub fn count(&self) -> usize {
        self.mails.lock().unwrap().len()
    }

    /// While busy, every message is refused with a transient 451.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::SeqCst);
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.mails().len() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.mails()
    }
}
