//! How values read in a report: numbers, optional fields, dates, ages and contacts.

use chrono::NaiveDate;
use phr_model::entry::Contact;

/// A number as people write it: no trailing `.0`, at most two decimals.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() || v.abs() >= 1e15 {
        format!("{v:e}")
    } else if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// An optional field, empty when absent.
pub(crate) fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// An optional date as written (`2015`, `2015-03`, `2015-03-14`), empty when absent.
pub(crate) fn day<D: ToString>(d: &Option<D>) -> String {
    d.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// A measurement with its unit: `60% correct`, `6 words`.
pub(crate) fn with_unit(v: f64, unit: &Option<String>) -> String {
    match unit.as_deref().map(str::trim) {
        Some(u) if u.starts_with('%') => format!("{}{u}", num(v)),
        Some(u) if !u.is_empty() => format!("{} {u}", num(v)),
        _ => num(v),
    }
}

/// Age in whole years on `today`.
pub(crate) fn age_on(dob: NaiveDate, today: NaiveDate) -> Option<u32> {
    today.years_since(dob)
}

/// A guardian or contact on one line: name (relationship) · phone · email.
pub(crate) fn contact_line(c: &Contact) -> String {
    let mut s = c.name.clone();
    if let Some(r) = &c.relationship {
        s.push_str(&format!(" ({r})"));
    }
    for extra in [&c.phone, &c.email].into_iter().flatten() {
        s.push_str(&format!(" · {extra}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_drop_needless_decimals() {
        assert_eq!(num(45.0), "45");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(1.0 / 3.0), "0.33");
        assert_eq!(with_unit(60.0, &Some("% correct".into())), "60% correct");
        assert_eq!(with_unit(6.0, &Some("words".into())), "6 words");
    }
}
