//! Values as people read them: dates, times, numbers, yes/no, choice words, and who wrote
//! something. One place, so issue 16 swaps the formatting here for ICU4X per locale.

use phr_engine::entry::{self, FieldKind};
use phr_engine::visible;
use phr_engine::{Device, PublicKey, Section};
use serde_json::Value;

use crate::i18n::Messages;

/// Someone else's text made safe to show: control characters and reordering marks become
/// visible escapes (the engine's one rule); line breaks stay, for multi-line fields.
pub fn text(s: &str) -> String {
    visible::escape(s, true).into_owned()
}

/// A calendar day (`YYYY-MM-DD`) as people write it; other text as it is.
pub fn date(s: &str) -> String {
    match chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d") {
        Ok(d) => d.format("%B %-d, %Y").to_string(),
        Err(_) => text(s),
    }
}

/// A date and time (RFC 3339 or `YYYY-MM-DDTHH:MM:SS`) as people write it, in local time
/// when it carries an offset.
pub fn datetime(s: &str) -> String {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t
            .with_timezone(&chrono::Local)
            .format("%B %-d, %Y, %-I:%M %p")
            .to_string();
    }
    match chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        Ok(t) => t.format("%B %-d, %Y, %-I:%M %p").to_string(),
        Err(_) => date(s),
    }
}

/// A Unix time as a date and time.
pub fn unix(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%B %-d, %Y, %-I:%M %p")
                .to_string()
        })
        .unwrap_or_default()
}

/// A number without a trailing `.0`, at most six significant digits after the point.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    let s = format!("{n:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The spec of `key` in `section` (a repeatable field is stored under its plural).
pub fn spec_of(section: Section, key: &str) -> Option<&'static entry::FieldSpec> {
    entry::fields(section)
        .iter()
        .find(|s| s.name == key || entry::storage_key(s) == key)
}

/// One value, as one line, knowing its field's kind where there is one.
pub fn value(m: &Messages, kind: Option<FieldKind>, v: &Value) -> String {
    match (kind, v) {
        (_, Value::Null) => m.get("value-none"),
        (Some(FieldKind::Date), Value::String(s)) => date(s),
        (Some(FieldKind::DateTime), Value::String(s)) => datetime(s),
        (Some(FieldKind::Choice(_)), Value::String(s)) => choice(m, s),
        (_, Value::String(s)) => text(s),
        (_, Value::Number(n)) => n.as_f64().map(number).unwrap_or_else(|| n.to_string()),
        (_, Value::Bool(true)) => m.get("value-yes"),
        (_, Value::Bool(false)) => m.get("value-no"),
        (_, Value::Array(items)) => items.iter().map(|i| value(m, None, i)).collect::<Vec<_>>().join("; "),
        (_, Value::Object(map)) => map
            .iter()
            .filter(|(k, _)| k.as_str() != "author")
            .map(|(k, v)| format!("{}: {}", text(k), value(m, None, v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A word a choice field holds, in plain words when the messages know it.
pub fn choice(m: &Messages, word: &str) -> String {
    let id = format!("choice-{word}");
    if m.has(&id) { m.get(&id) } else { text(word) }
}

/// A section's name for people.
pub fn section(m: &Messages, s: Section) -> String {
    m.get(&format!("section-{}", s.name().replace('_', "-")))
}

/// A field's label for people (a field the messages do not know shows its key).
pub fn label(m: &Messages, s: Section, key: &str) -> String {
    let name = spec_of(s, key).map(|spec| spec.name).unwrap_or(key);
    let id = field_id(s, name);
    if m.has(&id) { m.get(&id) } else { text(key) }
}

/// The message id of a field's label.
pub fn field_id(s: Section, name: &str) -> String {
    format!("field-{}-{}", s.name().replace('_', "-"), name.replace('_', "-"))
}

/// Who holds a key, named from the record's membership: this device, a device's name, a
/// grant's label, or the key's first eight hex digits.
pub fn who(m: &Messages, device: &Device, author: &str) -> String {
    let Ok(key) = author.parse::<PublicKey>() else {
        return text(author.get(..8).unwrap_or(author));
    };
    if key == device.device_id() {
        return m.get("history-this-device");
    }
    if key == device.record().id() {
        return m.get("history-root-key");
    }
    device
        .access()
        .name_of(&key)
        .map(|n| text(&n))
        .unwrap_or_else(|| text(author.get(..8).unwrap_or(author)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_numbers_and_other_peoples_text_read_plainly() {
        assert_eq!(date("2024-03-02"), "March 2, 2024");
        assert_eq!(datetime("2024-05-02T14:30:00"), "May 2, 2024, 2:30 PM");
        assert_eq!(number(60.0), "60");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(text("a\u{1b}[2Kb\u{202e}c"), "a\\u{1b}[2Kb\\u{202e}c");
        assert_eq!(text("one\ntwo"), "one\ntwo");
    }

    #[test]
    fn every_field_and_choice_word_has_a_label_and_a_hint() {
        let m = Messages::english();
        let mut missing = Vec::new();
        for s in Section::ALL {
            for spec in entry::fields(s) {
                let id = field_id(s, spec.name);
                for id in [id.clone(), format!("{id}.hint")] {
                    if !m.has(&id) {
                        missing.push(id);
                    }
                }
                let subs: &[entry::FieldSpec] = match spec.kind {
                    FieldKind::Items(sub) => sub,
                    _ => &[],
                };
                for kind in std::iter::once(spec.kind).chain(subs.iter().map(|s| s.kind)) {
                    if let FieldKind::Choice(words) = kind {
                        missing.extend(words.iter().map(|w| format!("choice-{w}")).filter(|id| !m.has(id)));
                    }
                }
            }
            let id = format!("section-{}", s.name().replace('_', "-"));
            if !m.has(&id) {
                missing.push(id);
            }
        }
        assert!(missing.is_empty(), "missing from i18n/en/portal.ftl: {missing:?}");
    }
}
