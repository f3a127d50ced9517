//! Other people's text made visible: control characters and the marks that reorder or hide
//! text shown as escapes such as `\u{1b}`, so that no text can move a terminal's cursor, erase
//! a line, set a window title or read differently from what it holds. One rule for the engine's
//! error messages and for every binary that prints a record's text.

use std::borrow::Cow;

/// Whether `c` must not be shown as it is: C0 controls (newline included), DEL, C1 controls,
/// the zero-width characters, and the Unicode marks, embeddings, overrides and isolates that
/// reorder text.
pub fn hazardous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every hazardous character but (if `keep_newlines`) `\n` shown as `\u{…}`.
pub fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let shown_raw = |c: char| !hazardous(c) || (keep_newlines && c == '\n');
    if text.chars().all(shown_raw) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if shown_raw(c) {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_reordering_marks_become_escapes_and_plain_text_is_untouched() {
        assert!(matches!(escape("Mia López 王小明 محمد", false), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\r\u{1b}[2K\u{9b}\u{202e}b", false),
            "a\\u{d}\\u{1b}[2K\\u{9b}\\u{202e}b"
        );
        assert_eq!(escape("one\ntwo", false), "one\\u{a}two");
        assert_eq!(escape("one\ntwo", true), "one\ntwo");
    }
}
