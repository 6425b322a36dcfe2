//! Functions read in one screen: none in `src/` is longer than [`MAX_LINES`] lines, from
//! its `fn` line to its closing brace, unit tests left out (issue 33). A longer one is split
//! into named steps, as `Watcher::cycle` was.

use std::path::Path;

use crate::architecture::rust_files;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const MAX_LINES: usize = 80;

/// `text` with comments, strings and character literals blanked out, newlines kept: what
/// is left holds only the code's own braces.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(i + k) == Some(&c))
    };
    while i < chars.len() {
        let c = chars[i];
        let end = if at(i, "//") {
            (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len())
        } else if at(i, "/*") {
            (i + 2..chars.len())
                .find(|&j| at(j, "*/"))
                .map_or(chars.len(), |j| j + 2)
        } else if let Some(end) = raw_string_end(&chars, i) {
            end
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            (j + 1).min(chars.len())
        } else if let Some(end) = char_literal_end(&chars, i) {
            end
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        out.extend(chars[i..end].iter().filter(|&&c| c == '\n'));
        i = end;
    }
    out
}

/// Where a raw string starting at `i` (`r"…"`, `r#"…"#`, `br"…"`) ends.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    let word_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if chars[i] != 'r' || word_before && chars[i - 1] != 'b' {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    if chars.get(i + 1 + hashes) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let body = i + 2 + hashes;
    Some(
        (body..chars.len())
            .find(|&j| chars[j..].starts_with(&close))
            .map_or(chars.len(), |j| j + close.len()),
    )
}

/// Where a character literal starting at `i` ends (`'a'`, `'\n'`, `'\u{1F600}'`); `None`
/// for a lifetime (`'a`).
fn char_literal_end(chars: &[char], i: usize) -> Option<usize> {
    if chars[i] != '\'' {
        return None;
    }
    let end = match chars.get(i + 1)? {
        '\\' if chars.get(i + 2) == Some(&'u') => {
            i + 3 + chars[i + 3..].iter().position(|&c| c == '}')? + 1
        }
        '\\' => i + 3,
        _ => i + 2,
    };
    (chars.get(end) == Some(&'\'')).then_some(end + 1)
}

/// The name in a line that starts a function (`pub(crate) async fn name(`).
fn function_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word == "fn" {
            let name = words.next()?;
            return name.split(['(', '<']).next().filter(|n| !n.is_empty());
        }
        let modifier = word.starts_with("pub")
            || matches!(
                word,
                "async" | "const" | "unsafe" | "extern" | "\"C\"" | "\"\""
            );
        if !modifier {
            return None;
        }
    }
    None
}

/// `(line, name, length)` of each function of `text` over `max` lines, before its unit
/// tests (`#[cfg(test)]`, at the end of a file).
fn long_functions(text: &str, max: usize) -> Vec<(usize, String, usize)> {
    let code = code_only(text);
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let Some(name) = function_name(lines[i]) else {
            i += 1;
            continue;
        };
        let (mut depth, mut opened, mut j) = (0i64, false, i);
        while j < lines.len() {
            for c in lines[j].chars() {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && lines[j].trim_end().ends_with(';')) {
                break;
            }
            j += 1;
        }
        let length = j + 1 - i;
        if opened && length > max {
            found.push((i + 1, name.to_owned(), length));
        }
        // Functions inside a long one are counted as part of it.
        i = if opened { j + 1 } else { i + 1 };
    }
    found
}

#[test]
fn no_function_in_src_is_longer_than_80_lines() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    files.sort();
    let mut long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, name, length) in long_functions(&text, MAX_LINES) {
            let file = file
                .strip_prefix(ROOT)
                .unwrap_or(file)
                .display()
                .to_string();
            long.push(format!("{file}:{line} {name}: {length} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "{} functions over {MAX_LINES} lines; split them into named steps:\n{}",
        long.len(),
        long.join("\n")
    );
}

#[test]
fn the_counter_sees_braces_of_code_only() {
    let text = "fn short() {\n    let s = \"}}}\";\n    let c = '}';\n    // }\n}\n\
                pub(crate) async fn long<'a>(x: &'a str) {\n    let r = r#\"{\"#;\n"
        .to_owned()
        + &"    call();\n".repeat(5)
        + "}\nfn declared();\n#[cfg(test)]\nfn in_tests() {\n"
        + &"    call();\n".repeat(9)
        + "}\n";
    assert_eq!(long_functions(&text, 10), vec![]);
    assert_eq!(long_functions(&text, 6), vec![(6, "long".to_owned(), 8)]);
}
