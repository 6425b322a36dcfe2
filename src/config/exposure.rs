//! Secrets that other users can read: the config file when it holds a secret itself, and
//! the files secrets are read from (`*_file` keys, the console's users, the TLS key),
//! when their mode lets anyone read them. `run` warns of each at start; it refuses none,
//! since an administrator may have reasons (a group-readable file is not reported).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Keys whose value is a secret written in the config itself (or in an environment
/// variable: always read as text, and never shown in an error).
const SECRET_KEYS: [&str; 5] = ["token", "secret", "password", "bearer_token", "routing_key"];

/// Whether `key` (the last part of a key's path) holds a secret written inline.
pub(super) fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key)
}
/// Keys naming a file a secret is read from.
const FILES: [&str; 7] = [
    "token_file",
    "secret_file",
    "password_file",
    "bearer_token_file",
    "routing_key_file",
    "users_file",
    "tls_key_file",
];

/// One warning per file readable by others that holds a secret; `config_path` is the
/// config file, `text` what it holds.
pub fn warnings(config_path: &Path, text: &str) -> Vec<String> {
    let Ok(value) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut inline = false;
    let mut files = Vec::new();
    walk(&toml::Value::Table(value), &mut inline, &mut files);
    let mut said = Vec::new();
    if inline && readable_by_others(config_path) {
        said.push(format!(
            "{} holds a secret and other users can read it: chmod o-r it, or move the secret to a *_file key",
            config_path.display()
        ));
    }
    files.sort();
    files.dedup();
    for file in files.iter().filter(|file| readable_by_others(file)) {
        said.push(format!(
            "{} holds a secret and other users can read it: chmod o-r it",
            file.display()
        ));
    }
    said
}

fn walk(value: &toml::Value, inline: &mut bool, files: &mut Vec<PathBuf>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                match value {
                    toml::Value::String(text) if is_secret_key(key) => {
                        *inline |= !text.is_empty();
                    }
                    toml::Value::String(path) if FILES.contains(&key.as_str()) => {
                        files.push(PathBuf::from(path));
                    }
                    other => walk(other, inline, files),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|item| walk(item, inline, files)),
        _ => {}
    }
}

fn readable_by_others(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o004 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn files_holding_secrets_that_others_can_read_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let users = file(dir.path(), "users", 0o644);
        let key = file(dir.path(), "key.pem", 0o640);
        let token = file(dir.path(), "token", 0o604);
        let text = format!(
            "[api]\ntoken_file = \"{}\"\n[http]\nusers_file = \"{}\"\ntls_key_file = \"{}\"\n[[webhook]]\nname = \"a\"\nsecret = \"whsec_x\"\n",
            token.display(),
            users.display(),
            key.display()
        );
        let config = file(dir.path(), "config.toml", 0o644);
        let said = warnings(&config, &text);
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(
            said.iter()
                .any(|s| s.starts_with(&config.display().to_string()))
        );
        assert!(
            said.iter()
                .any(|s| s.starts_with(&users.display().to_string()))
        );
        assert!(
            said.iter()
                .any(|s| s.starts_with(&token.display().to_string()))
        );
        assert!(
            !said.iter().any(|s| s.contains("key.pem")),
            "group-readable is not said"
        );
        // The same config without the inline secret, private: nothing to say of it.
        let private = file(dir.path(), "private.toml", 0o600);
        let without = text.replace("secret = \"whsec_x\"\n", "");
        assert_eq!(warnings(&config, &without).len(), 2);
        assert_eq!(warnings(&private, &text).len(), 2);
    }
}
