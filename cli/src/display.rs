//! Text and numbers from a record, as the terminal shows them.
//!
//! Much of what the CLI prints was written by someone else: a caregiver's message, a clinic's
//! form, a grant's label, a FHIR bundle's names. Printed raw, control characters in it would
//! be obeyed by the terminal: a carriage return or `ESC[1A ESC[2K` rewrites the line above
//! (erasing who really sent a message), OSC sequences set the window title or hide a link, and
//! the bidirectional overrides make text read differently from what it holds. So every such
//! string goes through [`text`] (one line) or [`lines`] (a multi-line field the CLI indents),
//! which show those characters as visible escapes such as `\u{1b}` instead.
//! `--json` output is left to serde, which escapes control characters itself.

use std::borrow::Cow;

use serde_json::Value;

use phr_engine::visible::escape;

/// Someone's text as one line on a terminal: control characters (newlines too, so no text can
/// start a line of its own) and reordering marks show as visible escapes.
pub fn text(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// A multi-line text as its lines, each safe as [`text`] makes it; the caller indents them so
/// that no line of it can pass for a line of the CLI's own.
pub fn lines(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.lines().map(self::text)
}

/// A message that may quote someone's text (an error naming a form's question, say): safe as
/// [`text`] makes it, but its own line breaks kept.
pub fn message(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// The most significant digits a number is shown with.
const SIGNIFICANT: i32 = 6;

/// A number as people read it: whole numbers as they are, others to at most six significant
/// digits without trailing zeros (`1.7`, not `1.7000000000000002`; `75.5553`, not
/// `75.55529258694807`). Only for display: what is stored keeps every digit.
pub fn number(n: f64) -> String {
    if !n.is_finite() || n == 0.0 {
        return format!("{n}");
    }
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    let magnitude = n.abs().log10().floor() as i32;
    if !(-6..15).contains(&magnitude) {
        let scientific = format!("{n:.prec$e}", prec = (SIGNIFICANT - 1) as usize);
        return match scientific.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", without_trailing_zeros(mantissa)),
            None => scientific,
        };
    }
    let decimals = (SIGNIFICANT - 1 - magnitude).max(0) as usize;
    without_trailing_zeros(&format!("{n:.decimals$}")).to_string()
}

/// `110.300` as `110.3`, `2.000` as `2`; text without a decimal point as it is.
fn without_trailing_zeros(fixed: &str) -> &str {
    if fixed.contains('.') {
        fixed.trim_end_matches('0').trim_end_matches('.')
    } else {
        fixed
    }
}

/// A measured value stored as text (a lab result such as `110.30000000000001` or `<5.000001`):
/// its number shown as [`number`] shows it, any comparator kept; other text unchanged (made
/// safe as [`text`] makes it).
pub fn measured(value: &str) -> Cow<'_, str> {
    let digits = value.trim_start_matches(['<', '>', '=', '≤', '≥']);
    let comparator = &value[..value.len() - digits.len()];
    match digits.parse::<f64>() {
        Ok(n) if digits.contains('.') && n.is_finite() => Cow::Owned(format!("{comparator}{}", number(n))),
        _ => text(value),
    }
}

/// A field value as one safe line (numbers as [`number`] shows them, booleans yes/no, items
/// joined with `; `).
pub fn value(v: &Value) -> String {
    match v {
        Value::String(s) => text(s).into_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(f) => number(f),
            None => n.to_string(),
        },
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(value).collect::<Vec<_>>().join("; "),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{}={}", text(k), value(v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_reordering_marks_become_visible_escapes() {
        let forged = "ok\r\u{1b}[1A\u{1b}[2K[clinician] Dr. Ames:\nsee me\u{9b}31m\u{7f}\u{202e}";
        let shown = text(forged);
        assert_eq!(
            shown,
            "ok\\u{d}\\u{1b}[1A\\u{1b}[2K[clinician] Dr. Ames:\\u{a}see me\\u{9b}31m\\u{7f}\\u{202e}"
        );
        let osc = "\u{1b}]0;pwned\u{7}\u{1b}]8;;http://evil\u{1b}\\click\u{1b}]8;;\u{1b}\\";
        assert!(!text(osc).chars().any(|c| c.is_control()), "{}", text(osc));
        assert!(matches!(text("Mia López → Dr. Ames"), Cow::Borrowed(_)));
        assert_eq!(message("line one\nline\rtwo"), "line one\nline\\u{d}two");
        let body: Vec<_> = lines("first\r\nsecond\u{1b}[2K\n").collect();
        assert_eq!(body, ["first", "second\\u{1b}[2K"]);
    }

    #[test]
    fn numbers_show_at_most_six_significant_digits_and_stay_whole_when_whole() {
        let cases = [
            (1.7000000000000002, "1.7"),
            (110.30000000000001, "110.3"),
            (75.55529258694807, "75.5553"),
            (0.1 + 0.2, "0.3"),
            (0.000123456789, "0.000123457"),
            (1234567.89, "1234568"),
            (120.0, "120"),
            (-2.50, "-2.5"),
            (-0.00000012, "-1.2e-7"),
            (1.2345678e16, "1.23457e16"),
        ];
        for (n, want) in cases {
            assert_eq!(number(n), want, "{n}");
        }
        assert_eq!(measured("110.30000000000001"), "110.3");
        assert_eq!(measured("<5.000001"), "<5");
        assert_eq!(measured("0012"), "0012", "text without a fraction stays as written");
        assert_eq!(measured("Straw"), "Straw");
    }
}
