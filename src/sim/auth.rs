//! `POST auth/token/`, as SDM's "Getting started with the API" describes it: an account's
//! `email` and `password` (and a `token_name`) give `{"key": "<token>"}`; wrong ones a
//! `400` with Django REST framework's `non_field_errors`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::lock;
use super::org::Org;
use super::state::Answer;

/// The answer to a login with `body`, against `orgs`' accounts.
pub(super) fn token(orgs: &[Arc<Org>], body: &[u8]) -> Answer {
    let answer = |status: u16, body: Value| Answer {
        status,
        body,
        headers: Vec::new(),
    };
    let Ok(login) = serde_json::from_slice::<Value>(body) else {
        return answer(400, json!({"detail": "JSON parse error."}));
    };
    let mut missing = serde_json::Map::new();
    for field in ["email", "password", "token_name"] {
        if !login[field].is_string() {
            missing.insert(field.into(), json!(["This field is required."]));
        }
    }
    if !missing.is_empty() {
        return answer(400, Value::Object(missing));
    }
    let account = orgs.iter().find(|org| {
        let (email, password) = &*lock(&org.login);
        login["email"] == email.as_str() && login["password"] == password.as_str()
    });
    match account {
        Some(org) => answer(200, json!({ "key": *lock(&org.token) })),
        None => answer(
            400,
            json!({"non_field_errors": ["Unable to log in with provided credentials."]}),
        ),
    }
}
