//! The console as a signed-in user sees it: the page, and the token its forms carry.

/// `/` on `base`, signed in as `user` with `password`.
pub async fn signed_in_page(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> String {
    client
        .get(format!("{base}/"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("the console answers")
        .text()
        .await
        .expect("the page reads")
}

/// The CSRF token of the first form on `page`.
pub fn csrf_token(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a signed-in page has forms") + marker.len();
    page[at..].split('"').next().unwrap_or_default().to_owned()
}

/// A real daemon serving the console on a free loopback port, its users `users` (lines
/// `name:HASH`, none: an open console) in `dir`, after its first cycle; and the address.
pub async fn daemon(
    sim: &sdm_watch::sim::Simulator,
    dir: &std::path::Path,
    users: Option<&str>,
) -> (crate::Daemon, String) {
    let listen = format!("127.0.0.1:{}", crate::ports::free());
    let users_file = match users {
        Some(lines) => {
            let path = dir.join("users");
            std::fs::write(&path, lines).expect("the users file is written");
            format!("users_file = \"{}\"", path.display())
        }
        None => String::new(),
    };
    let text = crate::config::console_config(sim, dir, &listen, &users_file, "");
    let path = dir.join("config.toml");
    std::fs::write(&path, &text).expect("the config is written");
    let daemon = crate::Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    (daemon, listen)
}
