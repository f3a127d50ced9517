//! Values as people read them: dates, times, numbers, yes/no, choice words, and who wrote
//! something. One place, so issue 16 swaps the formatting here for ICU4X per locale.

use phr_engine::entry::{self, FieldKind};
use phr_engine::visible;
use phr_engine::{Device, PublicKey, Section};
use serde_json::Value;

use crate::i18n::{Arg, Messages};

/// Someone else's text made safe to show: control characters and reordering marks become
/// visible escapes (the engine's one rule); line breaks stay, for multi-line fields.
pub fn text(s: &str) -> String {
    visible::escape(s, true).into_owned()
}

/// A calendar day (`YYYY-MM-DD`) as people write it, a year or month alone at that precision
/// (see [`partial_date`]); other text as it is.
pub fn date(s: &str) -> String {
    match chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d") {
        Ok(d) => dates::day(d).unwrap_or_else(|| text(s)),
        // A day an entry is about may be known only to its year or month.
        Err(_) => partial_date(s),
    }
}

/// A date known to a year, month or day, at that precision: `2015`, `March 2015`,
/// `March 14, 2015`; text that is not such a date is shown as it is.
pub fn partial_date(s: &str) -> String {
    let Ok(d) = entry::PartialDate::parse(s) else {
        return text(s);
    };
    let shown = match d.year_month() {
        (year, Some(month)) if d.precision() == entry::Precision::Month => dates::month(year, month),
        (year, None) => Some(year.to_string()),
        _ => dates::day(d.earliest()),
    };
    shown.unwrap_or_else(|| text(s))
}

/// A date and time (RFC 3339 or `YYYY-MM-DDTHH:MM:SS`) as people write it, in local time
/// when it carries an offset.
pub fn datetime(s: &str) -> String {
    let t = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.with_timezone(&chrono::Local).naive_local()),
        Err(_) => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok(),
    };
    match t {
        Some(t) => dates::moment(t).unwrap_or_else(|| text(s)),
        None => date(s),
    }
}

/// A Unix time as a date and time, in local time.
pub fn unix(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .and_then(|t| dates::moment(t.with_timezone(&chrono::Local).naive_local()))
        .unwrap_or_default()
}

/// Days and times through ICU4X's formatters (compiled CLDR data), made once per thread. English only
/// for now; issue 16 picks the formatter by the reader's locale.
mod dates {
    use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
    use icu_datetime::input::{Date, DateTime, Time};
    use icu_datetime::{DateTimeFormatter, fieldsets};
    use icu_locale_core::locale;

    thread_local! {
        static DAYS: Option<DateTimeFormatter<fieldsets::YMD>> =
            DateTimeFormatter::try_new(locale!("en").into(), fieldsets::YMD::long()).ok();
        static MONTHS: Option<DateTimeFormatter<fieldsets::YM>> =
            DateTimeFormatter::try_new(locale!("en").into(), fieldsets::YM::long()).ok();
        static MOMENTS: Option<DateTimeFormatter<fieldsets::YMDT>> =
            DateTimeFormatter::try_new(locale!("en").into(), fieldsets::YMD::long().with_time_hm()).ok();
    }

    /// `March 2, 2024`.
    pub fn day(d: NaiveDate) -> Option<String> {
        let date = Date::try_new_iso(d.year(), u8::try_from(d.month()).ok()?, u8::try_from(d.day()).ok()?).ok()?;
        DAYS.with(|f| f.as_ref().map(|f| f.format(&date).to_string()))
    }

    /// `March 2024`.
    pub fn month(year: i32, month: u32) -> Option<String> {
        let date = Date::try_new_iso(year, u8::try_from(month).ok()?, 1).ok()?;
        MONTHS.with(|f| f.as_ref().map(|f| f.format(&date).to_string()))
    }

    /// `May 2, 2024 at 2:30 PM`.
    pub fn moment(t: NaiveDateTime) -> Option<String> {
        let d = t.date();
        let date = Date::try_new_iso(d.year(), u8::try_from(d.month()).ok()?, u8::try_from(d.day()).ok()?).ok()?;
        let time = Time::try_new(u8::try_from(t.hour()).ok()?, u8::try_from(t.minute()).ok()?, 0, 0).ok()?;
        let at = DateTime { date, time };
        MOMENTS.with(|f| f.as_ref().map(|f| f.format(&at).to_string()))
    }
}

/// A number without a trailing `.0`, at most six significant digits after the point.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    let s = format!("{n:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A file's size as people read it (bytes, KB, MB, GB: powers of 1024, one decimal).
pub fn size(m: &Messages, bytes: u64) -> String {
    let (id, unit) = match bytes {
        n if n >= 1 << 30 => ("size-gb", 1u64 << 30),
        n if n >= 1 << 20 => ("size-mb", 1 << 20),
        n if n >= 1 << 10 => ("size-kb", 1 << 10),
        _ => ("size-bytes", 1),
    };
    let n = (bytes as f64 / unit as f64 * 10.0).round() / 10.0;
    m.with(id, &[("n", Arg::Text(number(n)))])
}

/// The spec of `key` in `section` (a repeatable field is stored under its plural).
pub fn spec_of(section: Section, key: &str) -> Option<&'static entry::FieldSpec> {
    entry::fields(section)
        .iter()
        .find(|s| s.name == key || entry::storage_key(s) == key)
}

/// The kind of value `key` holds: its field's, or for the keys a section keeps beside its
/// fields (a stopped medication's status and day), theirs.
pub fn kind_of(section: Section, key: &str) -> Option<FieldKind> {
    match (spec_of(section, key), key) {
        (Some(spec), _) => Some(spec.kind),
        (None, "status") => Some(FieldKind::Choice(&[])),
        (None, "stopped") => Some(FieldKind::PartialDate),
        _ => None,
    }
}

/// One value, as one line, knowing its field's kind where there is one.
pub fn value(m: &Messages, kind: Option<FieldKind>, v: &Value) -> String {
    match (kind, v) {
        (_, Value::Null) => m.get("value-none"),
        (Some(FieldKind::Date), Value::String(s)) => date(s),
        (Some(FieldKind::PartialDate), Value::String(s)) => partial_date(s),
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
        // CLDR English: "at", and a narrow no-break space before PM.
        assert_eq!(datetime("2024-05-02T14:30:00"), "May 2, 2024 at 2:30\u{202f}PM");
        assert_eq!(number(60.0), "60");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(text("a\u{1b}[2Kb\u{202e}c"), "a\\u{1b}[2Kb\\u{202e}c");
        assert_eq!(text("one\ntwo"), "one\ntwo");
    }

    #[test]
    fn a_date_known_to_a_year_or_month_is_shown_at_that_precision() {
        assert_eq!(partial_date("2015"), "2015");
        assert_eq!(partial_date("2015-03"), "March 2015");
        assert_eq!(partial_date("2015-03-14"), "March 14, 2015");
        assert_eq!(partial_date("sometime"), "sometime");
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
