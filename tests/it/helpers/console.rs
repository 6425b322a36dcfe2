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
