//! Text from outside (a receiver's answer, an API message, an operator's reason) made safe
//! for a terminal or a log line: control characters shown escaped, so that none can move
//! the cursor, recolour a terminal or forge another line.

use std::borrow::Cow;

/// `text` with every control character escaped (`\n`, `\r`, `\t`, else `\u{1b}`).
/// Unchanged text is borrowed.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert!(matches!(escaped("plain text, é"), Cow::Borrowed(_)));
        assert_eq!(
            escaped("ok\r\n2026-12-05 ERROR forged\x1b[2J\x07\u{85}"),
            "ok\\r\\n2026-12-05 ERROR forged\\u{1b}[2J\\u{7}\\u{85}"
        );
        assert_eq!(escaped("a\tb"), "a\\tb");
    }
}
