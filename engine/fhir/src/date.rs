//! FHIR dates, date-times and instants as the record keeps them.
//!
//! The record keeps wall-clock times without a zone (`NaiveDateTime`), so an incoming
//! `2024-03-02T10:00:00-05:00` is kept as 10:00 on that day (the offset is dropped, not
//! applied). Outgoing, a FHIR `instant` (and a `dateTime` with a time) must carry a zone, so the
//! writer is handed a [`Zone`]: the same wall-clock digits go out with the offset that zone has
//! at that time (see [`Zone`] for the choice). A partial date (`2024`, `2024-03`) stands for its
//! first day.

use chrono::offset::LocalResult;
use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, SecondsFormat, TimeDelta, TimeZone};

use phr_model::entry::PartialDate;
use phr_model::error::Result;

use crate::json::*;

/// A FHIR date, dateTime or instant, split into what the record keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct When {
    pub(crate) date: NaiveDate,
    pub(crate) time: Option<NaiveTime>,
    pub(crate) offset: Option<FixedOffset>,
}

impl When {
    pub(crate) fn datetime(self) -> Option<NaiveDateTime> {
        self.time.map(|t| NaiveDateTime::new(self.date, t))
    }
}

pub(crate) const BAD_DATE: &str =
    "is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with Z or ±hh:mm)";

/// Parse `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]`; a partial
/// date stands for its first day, since the record keeps whole dates.
pub(crate) fn parse_when(s: &str) -> Option<When> {
    let s = s.trim();
    let (day, clock) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = day.split('-').collect();
    let (y, m, d) = match parts.as_slice() {
        [y] if digits(y, 4) => (*y, "1", "1"),
        [y, m] if digits(y, 4) && digits(m, 2) => (*y, *m, "1"),
        [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2) => (*y, *m, *d),
        _ => return None,
    };
    let year: i32 = y.parse().ok()?;
    if year < 1 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, m.parse().ok()?, d.parse().ok()?)?;
    let Some(clock) = clock else {
        return Some(When {
            date,
            time: None,
            offset: None,
        });
    };
    if parts.len() != 3 {
        return None;
    }
    let (clock, offset) = if let Some(c) = clock.strip_suffix('Z') {
        (c, FixedOffset::east_opt(0))
    } else if let Some(at) = clock.rfind(['+', '-']) {
        let zone = &clock[at..];
        let (sign, hm) = zone.split_at(1);
        let (h, mm) = hm.split_once(':')?;
        if !digits(h, 2) || !digits(mm, 2) {
            return None;
        }
        let (h, mm): (i32, i32) = (h.parse().ok()?, mm.parse().ok()?);
        if h > 14 || mm > 59 {
            return None;
        }
        let secs = (h * 3600 + mm * 60) * if sign == "-" { -1 } else { 1 };
        (&clock[..at], Some(FixedOffset::east_opt(secs)?))
    } else {
        (clock, None)
    };
    let well_formed = clock.len() >= 5 && clock.as_bytes().get(2) == Some(&b':');
    if !well_formed {
        return None;
    }
    let time = NaiveTime::parse_from_str(clock, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M"))
        .ok()?;
    Some(When {
        date,
        time: Some(time),
        offset,
    })
}

/// The date at `at` in the record's `YYYY-MM-DD` form.
pub(crate) fn date_at(at: &At) -> Result<Option<String>> {
    match at.text()? {
        None => Ok(None),
        Some(s) => match parse_when(&s) {
            Some(w) => Ok(Some(w.date.format("%Y-%m-%d").to_string())),
            None => Err(at.fail(format!("`{s}` {BAD_DATE}"))),
        },
    }
}

/// The date at `at` at the precision it was written (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`), for a
/// field that keeps a partial date; a time of day is dropped.
pub(crate) fn partial_date_at(at: &At) -> Result<Option<String>> {
    match at.text()? {
        None => Ok(None),
        Some(s) => match parse_when(&s) {
            Some(_) => {
                let written = s.trim();
                Ok(Some(
                    written.split_once('T').map_or(written, |(day, _)| day).to_string(),
                ))
            }
            None => Err(at.fail(format!("`{s}` {BAD_DATE}"))),
        },
    }
}

/// Whether the span of partial date `a` ends before `b`'s begins (both as
/// [`partial_date_at`] gives them); text that is not a date is never before anything.
pub(crate) fn wholly_before(a: &str, b: &str) -> bool {
    match (PartialDate::parse(a), PartialDate::parse(b)) {
        (Ok(a), Ok(b)) => a.wholly_before(&b),
        _ => false,
    }
}

/// The first date found among `places`, at the precision it was written; see [`first_date`].
pub(crate) fn first_partial_date(places: &[At]) -> Result<Option<String>> {
    for at in places {
        if let Some(date) = partial_date_at(at)? {
            return Ok(Some(date));
        }
    }
    Ok(None)
}

/// The first date found among `places`, in order; a malformed one is an error even if a later
/// place has a good one, since the resource is then not what it claims.
pub(crate) fn first_date(places: &[At]) -> Result<Option<String>> {
    for at in places {
        if let Some(date) = date_at(at)? {
            return Ok(Some(date));
        }
    }
    Ok(None)
}

/// A date and time at `at`, with its offset if it had one; a date without a time is refused.
pub(crate) fn datetime_at(at: &At) -> Result<Option<(NaiveDateTime, Option<FixedOffset>)>> {
    let Some(s) = at.text()? else { return Ok(None) };
    let when = parse_when(&s).ok_or_else(|| at.fail(format!("`{s}` {BAD_DATE}")))?;
    match when.datetime() {
        Some(dt) => Ok(Some((dt, when.offset))),
        None => Err(at.fail(format!("`{s}` has no time of day; an appointment needs one"))),
    }
}

pub(crate) fn utc(local: NaiveDateTime, offset: FixedOffset) -> Option<NaiveDateTime> {
    local.checked_sub_signed(TimeDelta::try_seconds(i64::from(offset.local_minus_utc()))?)
}

/// Where the record's wall-clock times are, for writing them as FHIR instants.
///
/// The record keeps a time as the person (or the EHR) gave it on the clock, without a zone: an
/// appointment at 09:00 is at 09:00 where it takes place. FHIR's `instant` has no way to say
/// "local time, zone unknown", so the writer must choose an offset. phr's choice: the zone of
/// the device or node writing the FHIR (`offset_at(&chrono::Local, …)`, the process's `TZ` or
/// the system's zone), since a family's appointments are where the family lives and a clinic's
/// where its node runs; its offset is the one in force on that date (summer time included). The
/// wall-clock digits are never shifted, so reading the export back gives the same entry.
/// [`Zone::UTC`] is for tests and for callers with no zone of their own.
#[derive(Clone, Copy)]
pub struct Zone<'a> {
    offset: &'a (dyn Fn(NaiveDateTime) -> FixedOffset + Sync),
}

fn utc_offset(_: NaiveDateTime) -> FixedOffset {
    chrono::Utc.fix()
}

impl<'a> Zone<'a> {
    /// Wall-clock times taken as UTC.
    pub const UTC: Zone<'static> = Zone { offset: &utc_offset };

    /// The zone whose offset at a wall-clock time is `offset(time)`, e.g.
    /// `|t| offset_at(&chrono::Local, t)`.
    pub fn new(offset: &'a (dyn Fn(NaiveDateTime) -> FixedOffset + Sync)) -> Zone<'a> {
        Zone { offset }
    }

    /// `local` as a FHIR instant: its own digits and this zone's offset then (`Z` for UTC).
    pub(crate) fn instant(&self, local: NaiveDateTime) -> String {
        let offset = (self.offset)(local);
        match offset.from_local_datetime(&local) {
            LocalResult::Single(at) => at.to_rfc3339_opts(SecondsFormat::Secs, true),
            // A fixed offset maps every local time to one instant, except at the very edge of
            // chrono's range (year ±262143), where the time goes out as UTC.
            _ => format!("{}Z", format_datetime(local)),
        }
    }
}

/// The UTC offset `zone` has at the wall-clock time `local`: the earlier one when the clocks go
/// back (the time happens twice), and for a time the clocks skip (it never happens there) the
/// offset in force at that moment read as UTC, so every time gets one.
pub fn offset_at<Tz: TimeZone>(zone: &Tz, local: NaiveDateTime) -> FixedOffset {
    match zone.offset_from_local_datetime(&local) {
        LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => o.fix(),
        LocalResult::None => zone.offset_from_utc_datetime(&local).fix(),
    }
}

pub(crate) fn format_datetime(dt: NaiveDateTime) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A date-time for arithmetic only: absent, date-only or malformed all give `None` here, since
/// the same element's date was already checked where it matters.
pub(crate) fn datetime_or_none(at: &At) -> Option<NaiveDateTime> {
    let s = at.str().ok()??;
    parse_when(s)?.datetime()
}

/// A date-only element as the record's `YYYY-MM-DD`.
pub(crate) fn date(root: &At, key: &'static str) -> Result<Option<String>> {
    date_at(&root.get(key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_date_keeps_the_precision_it_was_written_at() {
        let json = serde_json::json!({
            "year": "2015", "month": "2015-03", "day": "2015-03-14",
            "moment": "2015-03-14T10:00:00+01:00", "bad": "2015-3"
        });
        let root = At {
            value: Some(&json),
            path: Path::new("Condition"),
        };
        let read = |key: &'static str| root.get(key).and_then(|at| partial_date_at(&at));
        assert_eq!(read("year").ok().flatten().as_deref(), Some("2015"));
        assert_eq!(read("month").ok().flatten().as_deref(), Some("2015-03"));
        assert_eq!(read("day").ok().flatten().as_deref(), Some("2015-03-14"));
        assert_eq!(read("moment").ok().flatten().as_deref(), Some("2015-03-14"));
        assert!(read("bad").is_err());
        assert_eq!(read("absent").ok().flatten(), None);
    }

    #[test]
    fn fhir_dates_are_read_in_every_precision() {
        let good = [
            ("2024", "2024-01-01", None),
            ("2024-02", "2024-02-01", None),
            ("2024-02-29", "2024-02-29", None),
            ("2024-03-02T10:05:00Z", "2024-03-02", Some("2024-03-02T10:05:00")),
            (
                "2024-03-02T10:05:07.123+05:30",
                "2024-03-02",
                Some("2024-03-02T10:05:07"),
            ),
            ("2024-03-02T23:30:00-05:00", "2024-03-02", Some("2024-03-02T23:30:00")),
            ("2024-03-02T10:05", "2024-03-02", Some("2024-03-02T10:05:00")),
        ];
        for (text, date, datetime) in good {
            let when = parse_when(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(when.date.format("%Y-%m-%d").to_string(), date);
            assert_eq!(when.datetime().map(format_datetime).as_deref(), datetime, "{text}");
        }
        let bad = [
            "",
            "T",
            "0000",
            "24",
            "2024-3-1",
            "2023-02-29",
            "2024-13",
            "2024-03-02T",
            "2024-03T10:00:00Z",
            "2024-03-02T25:00:00Z",
            "2024-03-02T10:00:00+15:00",
            "2024-03-02T10:00:00+0500",
            "2024-03-02 10:00",
            "2024-03-02T1:00:00Z",
            "٢٠٢٤-03-02",
            "2024-03-02T10:00:00+05:3é",
        ];
        for text in bad {
            assert!(parse_when(text).is_none(), "{text} should be refused");
        }
    }
}
