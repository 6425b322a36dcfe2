//! Cutting text to a service's limit and escaping it for the markup it lands in.

/// What a cut text ends with.
pub const ELLIPSIS: &str = "...";

/// `text` in at most `max` characters: whole, or cut and ending with "...".
pub fn cut(text: &str, max: usize) -> String {
    fit(text, max, |s| s.to_owned())
}

/// `text` escaped by `escape`, in at most `max` characters of escaped text: whole, or
/// the longest prefix whose escaped form fits with "..." after it. An escape sequence is
/// never cut in half.
pub fn fit(text: &str, max: usize, escape: impl Fn(&str) -> String) -> String {
    let whole = escape(text);
    if whole.chars().count() <= max {
        return whole;
    }
    let budget = max.saturating_sub(ELLIPSIS.len());
    // The longest prefix whose escaped form fits: escaping only lengthens, so the
    // escaped length grows with the prefix and a binary search finds it.
    let ends: Vec<usize> = text
        .char_indices()
        .map(|(at, _)| at)
        .skip(1)
        .chain([text.len()])
        .collect();
    let fits = |chars: usize| {
        let prefix = &text[..chars.checked_sub(1).map_or(0, |i| ends[i])];
        escape(prefix).chars().count() <= budget
    };
    let (mut low, mut high) = (0, ends.len().min(budget));
    while low < high {
        let middle = (low + high).div_ceil(2);
        if fits(middle) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    let prefix = &text[..low.checked_sub(1).map_or(0, |i| ends[i])];
    let mut cut = escape(prefix);
    cut.push_str(ELLIPSIS);
    cut
}

/// Slack's mrkdwn: `&`, `<` and `>` become entities (Slack's "Escaping text").
pub fn slack(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// HTML text and attribute values.
pub fn html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Discord's markdown: a backslash before every character that could format, link or
/// mention, so that a value shows as it is.
pub fn discord(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '[' | ']' | '#' | '@'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The Markdown subset of Adaptive Card `TextBlock` and `FactSet` texts (bold, italic,
/// lists, links): a backslash before every character that could open markup, and before
/// a list marker opening a line, so that a job named `[Open](https://x)` or `*urgent*`
/// shows as written (CommonMark's backslash escapes, which the card renderers follow).
pub fn teams(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive(['\n', '\r']) {
        let body = line.trim_start();
        escaped.push_str(&line[..line.len() - body.len()]);
        // A list marker opening the line: `- `, `+ `, `12. `.
        let digits = body.chars().take_while(char::is_ascii_digit).count();
        let ordered = digits > 0 && body[digits..].starts_with('.');
        for (at, c) in body.char_indices() {
            let marker = (at == 0 && matches!(c, '-' | '+')) || (ordered && at == digits);
            if marker
                || matches!(
                    c,
                    '\\' | '*'
                        | '_'
                        | '~'
                        | '`'
                        | '['
                        | ']'
                        | '('
                        | ')'
                        | '#'
                        | '>'
                        | '<'
                        | '|'
                        | '!'
                )
            {
                escaped.push('\\');
            }
            escaped.push(c);
        }
    }
    escaped
}

/// Leaves text as it is.
pub fn plain(text: &str) -> String {
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_markdown_is_escaped_to_show_as_written() {
        assert_eq!(
            teams("[Open job](https://evil.example)"),
            "\\[Open job\\]\\(https://evil.example\\)"
        );
        assert_eq!(teams("*urgent* _now_"), "\\*urgent\\* \\_now\\_");
        assert_eq!(
            teams("- item\n2. two\n  + three"),
            "\\- item\n2\\. two\n  \\+ three"
        );
        assert_eq!(teams("a-b 3.5 plain"), "a-b 3.5 plain");
    }

    #[test]
    fn cuts_to_the_limit_with_an_ellipsis() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly10!", 10), "exactly10!");
        assert_eq!(cut("0123456789ab", 10), "0123456...");
        assert_eq!(cut("ééééééééééé", 5).chars().count(), 5);
    }

    #[test]
    fn never_cuts_an_escape_in_half() {
        let text = "a<<<<<<<<<<<<<<<<";
        let cut = fit(text, 12, slack);
        assert!(cut.chars().count() <= 12, "{cut}");
        assert!(cut.ends_with("&lt;..."), "{cut}");
        let cut = fit("*****************", 10, discord);
        assert!(
            cut.chars().count() <= 10 && cut.ends_with("\\*..."),
            "{cut}"
        );
    }

    proptest::proptest! {
        /// Against the obvious way: try every prefix, longest first.
        #[test]
        fn fit_keeps_the_longest_prefix_that_fits(
            text in "[a-c<>&*\\\\é]{0,40}",
            max in 0usize..50,
        ) {
            for escape in [slack, discord, html, plain] {
                let got = fit(&text, max, escape);
                let whole = escape(&text);
                let expected = if whole.chars().count() <= max {
                    whole
                } else {
                    let chars: Vec<char> = text.chars().collect();
                    let budget = max.saturating_sub(3);
                    (0..=chars.len())
                        .rev()
                        .map(|n| escape(&chars[..n].iter().collect::<String>()))
                        .find(|e| e.chars().count() <= budget)
                        .unwrap_or_default()
                        + ELLIPSIS
                };
                proptest::prop_assert_eq!(&got, &expected);
                proptest::prop_assert!(got.chars().count() <= max.max(3));
            }
        }
    }
}
