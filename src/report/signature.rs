//! An error message's signature: the message with what varies from one occurrence to the
//! next replaced by a placeholder (quoted values by `'*'`, ids by `<id>`, paths by
//! `<path>`, numbers by `<n>`), so that "Column 'sku' missing in row 17" and "Column 'ean'
//! missing in row 4" are one line of a report.

/// The signature of `message`.
pub fn signature(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let chars: Vec<char> = message.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // A quoted value, up to its closing quote on the same line.
        if matches!(c, '\'' | '"' | '`')
            && quotes_value(&chars, i)
            && let Some(end) = chars[i + 1..]
                .iter()
                .position(|&d| d == c || d == '\n')
                .map(|at| at + i + 1)
                .filter(|&end| chars[end] == c)
        {
            out.push(c);
            out.push('*');
            out.push(c);
            i = end + 1;
            continue;
        }
        // A word: a path, an id, a number, or kept as it is (its digits as <n>).
        if !c.is_whitespace() {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push_str(&word_signature(&word));
            continue;
        }
        if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
        i += 1;
    }
    out.trim_end().to_owned()
}

/// Whether the quote at `at` opens a value: at the start of a word (an apostrophe inside
/// a word, as in "doesn't", does not).
fn quotes_value(chars: &[char], at: usize) -> bool {
    at == 0 || !chars[at - 1].is_alphanumeric()
}

/// One whitespace-free word's signature; punctuation around it stays.
fn word_signature(word: &str) -> String {
    let lead: String = word
        .chars()
        .take_while(|c| "([{<,;:".contains(*c))
        .collect();
    let core_and_tail = &word[lead.len()..];
    let core = core_and_tail.trim_end_matches(|c: char| ".,;:)]}>!?".contains(c));
    let tail = &core_and_tail[core.len()..];
    let replaced = if is_path(core) {
        "<path>".to_owned()
    } else if is_id(core) {
        "<id>".to_owned()
    } else {
        numbers(core)
    };
    format!("{lead}{replaced}{tail}")
}

/// `/data/in/file.csv`, `./x/y`, `C:\in\x`, `s3://bucket/key`.
fn is_path(word: &str) -> bool {
    let unix = (word.starts_with('/') || word.starts_with("./") || word.starts_with("~/"))
        && word.len() > 1
        && word[1..].contains(['/', '.']);
    let windows = word.len() > 3 && word.as_bytes()[1] == b':' && word[2..].starts_with('\\');
    let url = word.contains("://");
    unix || windows || url
}

/// A UUID, or a long run of hex digits or of letters and digits mixed (a hash, a key).
fn is_id(word: &str) -> bool {
    let hexish = word.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let letters = word.chars().filter(char::is_ascii_alphabetic).count();
    (hexish && word.len() >= 8 && digits > 0 && letters > 0)
        || (word.len() >= 16
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && digits >= 4
            && letters > 0)
}

/// Every run of digits (with a sign, decimals or thousands separators) as `<n>`.
fn numbers(word: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | ',')
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            if out.ends_with('-') && !out[..out.len() - 1].ends_with(char::is_alphanumeric) {
                out.pop();
            }
            out.push_str("<n>");
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn messages_that_differ_only_in_what_varies_share_a_signature() {
        let groups: &[(&[&str], &str)] = &[
            (
                &[
                    "Column 'sku' missing in row 17",
                    "Column 'ean' missing in row 4",
                ],
                "Column '*' missing in row <n>",
            ),
            (
                &[
                    "Unable to parse /data/in/supplier_2026-11-28.csv: line 3120: invalid UTF-8",
                    "Unable to parse /data/in/acme.xlsx: line 7: invalid UTF-8",
                ],
                "Unable to parse <path>: line <n>: invalid UTF-<n>",
            ),
            (
                &[
                    "Job 3f1c9a2e-0000-4000-8000-000000000000 timed out after 3600s",
                    "Job 7b2e1d40-1111-4aaa-9bbb-123456789abc timed out after 120s",
                ],
                "Job <id> timed out after <n>s",
            ),
            (
                &[
                    "Price \"12,50\" is not a number (product 104223)",
                    "Price \"abc\" is not a number (product 9)",
                ],
                "Price \"*\" is not a number (product <n>)",
            ),
            (
                &[
                    "Upload to s3://bucket/exports/x.json failed: 503",
                    "Upload to https://files.example.com/a/b failed: 502",
                ],
                "Upload to <path> failed: <n>",
            ),
            (
                &[
                    "Mapping doesn't match: -3 attributes",
                    "Mapping doesn't match: 12 attributes",
                ],
                "Mapping doesn't match: <n> attributes",
            ),
        ];
        for (messages, expected) in groups {
            for message in *messages {
                assert_eq!(signature(message), *expected, "{message}");
            }
        }
    }

    #[test]
    fn whitespace_collapses_and_nothing_panics_on_odd_input() {
        assert_eq!(signature("  a\n\n b\t c  "), "a b c");
        assert_eq!(signature(""), "");
        for odd in [
            "'",
            "\"unterminated",
            "é'ü'",
            "C:",
            "/",
            "-",
            "1.",
            ",1",
            "ab'cd'",
        ] {
            let _ = signature(odd);
        }
        assert_eq!(signature("it's 'x'"), "it's '*'");
    }
}
