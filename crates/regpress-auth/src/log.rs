//! The handler's log: one line per event on stderr, safe to read in a terminal.
//!
//! Log lines quote what clients sent (scopes, URIs, claims, token errors). A client that puts a
//! newline in a scope could forge a line, and an escape sequence could repaint the operator's
//! terminal, so every line goes through [`line`], which escapes control characters and the
//! Unicode bidirectional controls. Nothing else in the crate writes to stderr while serving.

use std::borrow::Cow;
use std::fmt;

/// Write `regpress auth: <message>` to stderr, control characters escaped.
pub fn line(message: fmt::Arguments<'_>) {
    eprintln!("regpress auth: {}", escape(&message.to_string()));
}

/// `text` with every control character (and bidirectional control) written as its Rust escape:
/// `\n`, `\u{1b}`, `\u{202e}`. Everything else, quotes and backslashes included, is kept.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(
            escape("repository:acme/app:pull \"ü\""),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape("a\nregpress auth: x\u{1b}[2J\r\t\u{7f}\u{202e}b"),
            "a\\nregpress auth: x\\u{1b}[2J\\r\\t\\u{7f}\\u{202e}b"
        );
    }
}
