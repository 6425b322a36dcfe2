//! `[http] users_file`: who may sign in to the console. One user a line, `name:hash`, the
//! hash argon2 (`$argon2id$...`, as `sdm-watch hash-password` prints) or bcrypt
//! (`$2b$...`); blank lines and lines starting with `#` are skipped. Read at load and on
//! SIGHUP; a file that does not read is refused whole, naming the line.

use std::fmt;
use std::path::{Path, PathBuf};

use argon2::password_hash::PasswordHash;

/// A password hash as the file holds it, its scheme checked.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHashText {
    Argon2(String),
    Bcrypt(String),
}

/// The users, in the file's order.
#[derive(Clone, PartialEq, Eq)]
pub struct Users {
    pub path: PathBuf,
    pub entries: Vec<(String, PasswordHashText)>,
}

/// Hashes never print.
impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "Users({}: {names:?})", self.path.display())
    }
}

/// Why a users file cannot be used: it cannot be read, or a line is wrong (named by its
/// number; a hash is never shown).
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{} line {line}: {problem}", path.display())]
    Line {
        path: std::path::PathBuf,
        line: usize,
        problem: String,
    },
}

impl Users {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Users, UsersError> {
        let mut entries: Vec<(String, PasswordHashText)> = Vec::new();
        // A byte-order mark some editors write would otherwise end up in the first name.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |problem: &str| UsersError::Line {
                path: path.to_owned(),
                line: n + 1,
                problem: problem.to_owned(),
            };
            let (name, hash) = line
                .split_once(':')
                .ok_or_else(|| at("not \"name:hash\""))?;
            let name = name.trim();
            if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(at("the name is empty or holds a space"));
            }
            if entries.iter().any(|(known, _)| known == name) {
                return Err(at(&format!("{name:?} is named twice")));
            }
            let hash = hash.trim();
            let hash = if hash.starts_with("$argon2") {
                let parsed = PasswordHash::new(hash)
                    .map_err(|e| at(&format!("the argon2 hash does not read: {e}")))?;
                let known = ["argon2id", "argon2i", "argon2d"].contains(&parsed.algorithm.as_str());
                if !known || parsed.salt.is_none() || parsed.hash.is_none() {
                    return Err(at("the argon2 hash does not read: no salt or hash in it"));
                }
                PasswordHashText::Argon2(hash.to_owned())
            } else if is_bcrypt(hash) {
                PasswordHashText::Bcrypt(hash.to_owned())
            } else {
                return Err(at(
                    "the hash is neither argon2 ($argon2id$...) nor bcrypt ($2b$...); make one with `sdm-watch hash-password`",
                ));
            };
            entries.push((name.to_owned(), hash));
        }
        Ok(Users {
            path: path.to_owned(),
            entries,
        })
    }
}

/// `$2a$`, `$2b$` or `$2y$`, a cost of two digits, then 53 characters.
fn is_bcrypt(hash: &str) -> bool {
    let prefix_ok = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
    let parts: Vec<&str> = hash.split('$').collect();
    prefix_ok
        && parts.len() == 4
        && parts[2].len() == 2
        && parts[2].chars().all(|c| c.is_ascii_digit())
        && parts[3].len() == 53
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARGON: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo";
    const BCRYPT: &str = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";

    #[test]
    fn users_read_with_both_schemes_and_bad_lines_are_named() {
        let path = Path::new("users");
        let users = Users::parse(
            &format!("# console users\n\nalice:{ARGON}\nbob: {BCRYPT}\n"),
            path,
        )
        .unwrap();
        assert_eq!(users.entries.len(), 2);
        assert!(
            !format!("{users:?}").contains("argon2"),
            "hashes never print"
        );
        for (text, why) in [
            ("alice", "line 1: not \"name:hash\""),
            ("alice:secret", "neither argon2"),
            ("alice:$argon2id$nonsense", "does not read"),
            (
                ":$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie",
                "name is empty",
            ),
            ("a:$2b$04$short", "neither argon2"),
        ] {
            let error = Users::parse(text, path).unwrap_err().to_string();
            assert!(error.contains(why), "{text:?}: {error}");
        }
        let marked = Users::parse(&format!("\u{feff}alice:{BCRYPT}\r\n"), path).unwrap();
        assert_eq!(
            marked.entries[0].0, "alice",
            "a byte-order mark and CRLF are no part of it"
        );
        let twice = format!("a:{BCRYPT}\na:{BCRYPT}");
        assert!(
            Users::parse(&twice, path)
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
    }
}
