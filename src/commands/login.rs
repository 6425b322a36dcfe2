//! `sdm-watch login`: an API token from an SDM account's e-mail and password
//! (`POST auth/token/`), written where the config reads it (`api.token_file`, or the
//! organisation's with `--org`) or to `--out`: atomically, mode 0600, never printed. The
//! config is read leniently, as written: the token it names may not exist yet.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use url::Url;

use super::UsageError;

/// What `login` was asked.
#[derive(clap::Args)]
pub struct Login {
    /// The account's e-mail address
    #[arg(long)]
    pub email: String,
    /// Read the password from stdin's first line (else it is asked, without echo)
    #[arg(long)]
    pub password_stdin: bool,
    /// Write the token here instead of the config's token_file
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace an existing token file
    #[arg(long)]
    pub force: bool,
    /// The token's name in SDM (default: "sdm-watch on HOST")
    #[arg(long, value_name = "NAME")]
    pub token_name: Option<String>,
    /// The organisation whose base_url and token_file to use
    #[arg(long = "org", value_name = "NAME")]
    pub org: Option<String>,
    /// The SDM API's base URL (default: the config's, else https://sdm.akeneo.cloud/api/v1/)
    #[arg(long, value_name = "URL")]
    pub base_url: Option<Url>,
}

const DEFAULT_BASE_URL: &str = "https://sdm.akeneo.cloud/api/v1/";

pub async fn run(config: &Path, login: Login, out: &mut impl Write) -> anyhow::Result<()> {
    let (base_url, token_file) = from_config(config, login.org.as_deref())?;
    let base_url = match login.base_url.or(base_url) {
        Some(url) => url,
        None => Url::parse(DEFAULT_BASE_URL)?,
    };
    let Some(path) = login.out.or(token_file) else {
        return Err(UsageError(format!(
            "where to write the token? Give --out PATH, or set api.token_file in {}",
            config.display()
        ))
        .into());
    };
    if path.exists() && !login.force {
        bail!("{} exists and is kept; --force replaces it", path.display());
    }
    let password = password(&login.email, login.password_stdin)?;
    let name = login.token_name.unwrap_or_else(|| {
        format!(
            "sdm-watch on {}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "this host".to_owned())
        )
    });
    let token = request_token(&base_url, &login.email, &password, &name).await?;
    write_private(&path, &token)?;
    writeln!(out, "token written to {}", path.display())?;
    Ok(())
}

/// `[api] base_url` and `token_file` (or `--org`'s table's), read from the file as written.
fn from_config(path: &Path, org: Option<&str>) -> anyhow::Result<(Option<Url>, Option<PathBuf>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((None, None));
        }
        Err(error) => return Err(error).context(format!("cannot read {}", path.display())),
    };
    let config: toml::Table = toml::from_str(&text)
        .map_err(|error| UsageError(format!("{}: {error}", path.display())))?;
    let api = config.get("api").and_then(toml::Value::as_table);
    let table = match org {
        None => api,
        Some(name) => Some(
            config
                .get("organisation")
                .and_then(toml::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(toml::Value::as_table)
                .find(|table| table.get("name").and_then(toml::Value::as_str) == Some(name))
                .ok_or_else(|| {
                    UsageError(format!("no organisation {name:?} in {}", path.display()))
                })?,
        ),
    };
    let text_of = |key: &str| {
        table
            .and_then(|t| t.get(key))
            .or_else(|| api.and_then(|t| t.get(key)))
            .and_then(toml::Value::as_str)
    };
    let base_url = text_of("base_url")
        .map(|text| Url::parse(text).map_err(|e| UsageError(format!("api.base_url {text:?}: {e}"))))
        .transpose()?;
    // The organisation's own token_file only: another's would be overwritten.
    let token_file = table
        .and_then(|t| t.get("token_file"))
        .and_then(toml::Value::as_str)
        .map(PathBuf::from);
    Ok((base_url, token_file))
}

/// The password: stdin's first line with `--password-stdin`, else asked on the terminal
/// without echo; never from a pipe unasked.
fn password(email: &str, from_stdin: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if from_stdin {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err(UsageError("--password-stdin read an empty password".into()).into());
        }
        return Ok(password);
    }
    if !stdin.is_terminal() {
        return Err(UsageError(
            "stdin is not a terminal: pipe the password with --password-stdin".into(),
        )
        .into());
    }
    eprint!("SDM password for {email}: ");
    let password = read_without_echo()?;
    eprintln!();
    Ok(password)
}

/// One line from the terminal on stdin, with echo turned off while it is typed.
pub(super) fn read_without_echo() -> anyhow::Result<String> {
    // SAFETY: tcgetattr/tcsetattr on stdin's descriptor with a termios they fill in; the
    // old settings are put back before returning.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut old) } != 0 {
        bail!("cannot read the terminal's settings");
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) };
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &old) };
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// `POST <base_url>auth/token/`: the token's key, or the API's reason for refusing.
async fn request_token(
    base_url: &Url,
    email: &str,
    password: &str,
    name: &str,
) -> anyhow::Result<String> {
    let url = base_url.join("auth/token/")?;
    let http = crate::roots::client(&[], |builder| {
        builder
            .user_agent(concat!("sdm-watch/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
    })?;
    let response = http
        .post(url.clone())
        .json(&json!({"email": email, "password": password, "token_name": name}))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    // SDM's `key`, or `token` as Django REST framework's stock view names it.
    let token = ["key", "token"]
        .iter()
        .find_map(|field| body[field].as_str().filter(|t| !t.trim().is_empty()));
    if status.is_success() {
        if let Some(token) = token {
            return Ok(token.trim().to_owned());
        }
        bail!(
            "the SDM API answered {status} without a token (no `key`); {}",
            fields_named(&body)
        );
    }
    bail!(
        "the SDM API refused the login ({status}): {}",
        reason(&body)
    )
}

/// Django REST framework's reason for a refusal, as one line: the text of `detail` and
/// `non_field_errors` (escaped, cut), and only the names of other fields: a value the API
/// sent may be anything, a token included, and is never printed.
fn reason(body: &Value) -> String {
    let Some(fields) = body.as_object() else {
        return "no reason given".to_owned();
    };
    let text = |value: &Value| match value {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        Value::String(text) => text.clone(),
        _ => String::new(),
    };
    let mut parts = Vec::new();
    let mut others = Vec::new();
    for (field, value) in fields {
        match field.as_str() {
            "non_field_errors" | "detail" => {
                let said: String = text(value).chars().take(200).collect();
                parts.push(crate::domain::text::escaped(&said).into_owned());
            }
            _ => others.push(field.as_str()),
        }
    }
    if !others.is_empty() {
        parts.push(format!("about {}", names(&others)));
    }
    if parts.is_empty() {
        "no reason given".to_owned()
    } else {
        parts.join("; ")
    }
}

/// `it sent the fields ...`, names only, escaped.
fn fields_named(body: &Value) -> String {
    match body.as_object() {
        Some(fields) if !fields.is_empty() => {
            let fields: Vec<&str> = fields.keys().map(String::as_str).collect();
            format!("it sent the fields {}", names(&fields))
        }
        Some(_) => "it sent an empty object".to_owned(),
        None => "it sent no JSON object".to_owned(),
    }
}

fn names(fields: &[&str]) -> String {
    fields
        .iter()
        .take(20)
        .map(|field| format!("`{}`", crate::domain::text::escaped(field)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `token` to `path` atomically (a private temporary file beside it, then renamed),
/// mode 0600.
fn write_private(path: &Path, token: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or("token".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(format!("{token}\n").as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
