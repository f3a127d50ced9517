//! A date known to a year, a month or a day, kept as it was written.
//!
//! Clinical history is often known only roughly: "asthma since 2015", "the measles shot in
//! March 2015". A [`PartialDate`] keeps `2015`, `2015-03` or `2015-03-14` exactly as given, so
//! nothing shows or exports a day nobody said. It is stored as that text, so every full date
//! already in a record (`YYYY-MM-DD`) reads unchanged.
//!
//! Order: a partial date stands for the span of days it covers. Sorting and filters compare by
//! the earliest day (`2015` sorts as 2015-01-01, before `2015-03`); at equal earliest days the
//! less precise sorts first. Checks between two dates ("resolved before onset") refuse only when
//! one span ends before the other begins, so `2015` and `2015-03` never contradict each other.

use std::cmp::Ordering;
use std::fmt;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// How much of a [`PartialDate`] is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    /// `YYYY`.
    Year,
    /// `YYYY-MM`.
    Month,
    /// `YYYY-MM-DD`.
    Day,
}

/// A date at the precision it was given: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialDate {
    first: NaiveDate,
    precision: Precision,
}

impl PartialDate {
    /// Read `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (years 1 to 9999, four digits each).
    pub fn parse(s: &str) -> Result<PartialDate> {
        Self::read(s.trim()).ok_or_else(|| Error::InvalidDate(s.to_string()))
    }

    fn read(s: &str) -> Option<PartialDate> {
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        let parts: Vec<&str> = s.split('-').collect();
        let (y, m, d, precision) = match parts.as_slice() {
            [y] if digits(y, 4) => (*y, "01", "01", Precision::Year),
            [y, m] if digits(y, 4) && digits(m, 2) => (*y, *m, "01", Precision::Month),
            [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2) => (*y, *m, *d, Precision::Day),
            _ => return None,
        };
        let year: i32 = y.parse().ok()?;
        if year < 1 {
            return None;
        }
        let first = NaiveDate::from_ymd_opt(year, m.parse().ok()?, d.parse().ok()?)?;
        Some(PartialDate { first, precision })
    }

    /// A whole day.
    pub fn day(date: NaiveDate) -> PartialDate {
        PartialDate {
            first: date,
            precision: Precision::Day,
        }
    }

    /// How much of it is known.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The first day it covers (a year's 1 January, a month's first).
    pub fn earliest(&self) -> NaiveDate {
        self.first
    }

    /// The last day it covers (a year's 31 December, a month's last).
    pub fn latest(&self) -> NaiveDate {
        let next = match self.precision {
            Precision::Day => return self.first,
            Precision::Month => self.first.checked_add_months(Months::new(1)),
            Precision::Year => self.first.checked_add_months(Months::new(12)),
        };
        next.and_then(|n| n.pred_opt()).unwrap_or(self.first)
    }

    /// Whether all of this span comes before all of `other`'s.
    pub fn wholly_before(&self, other: &PartialDate) -> bool {
        self.latest() < other.earliest()
    }

    /// The year, and the month when known (for "March 2015").
    pub fn year_month(&self) -> (i32, Option<u32>) {
        let month = (self.precision >= Precision::Month).then(|| self.first.month());
        (self.first.year(), month)
    }
}

impl fmt::Display for PartialDate {
    /// As written: `2015`, `2015-03` or `2015-03-14`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = match self.precision {
            Precision::Year => "%Y",
            Precision::Month => "%Y-%m",
            Precision::Day => "%Y-%m-%d",
        };
        write!(f, "{}", self.first.format(shape))
    }
}

impl Ord for PartialDate {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.first, self.precision).cmp(&(other.first, other.precision))
    }
}

impl PartialOrd for PartialDate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for PartialDate {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PartialDate::read(text.trim())
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a date: use YYYY, YYYY-MM or YYYY-MM-DD")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pd(s: &str) -> PartialDate {
        PartialDate::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_date_is_kept_at_the_precision_it_was_written() {
        for s in ["2015", "2015-03", "2015-03-14", "0001", "9999-12-31"] {
            assert_eq!(pd(s).to_string(), s);
        }
        assert_eq!(pd("2015").precision(), Precision::Year);
        assert_eq!(pd("2015-03").precision(), Precision::Month);
        assert_eq!(pd(" 2015-03-14 ").precision(), Precision::Day);
    }

    #[test]
    fn what_is_not_a_date_is_refused() {
        for s in [
            "",
            "15",
            "0000",
            "2015-3",
            "2015-13",
            "2015-02-29",
            "2015-03-14T10:00",
            "٢٠١٥",
            "2015-",
        ] {
            assert!(PartialDate::parse(s).is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn a_span_runs_from_its_first_to_its_last_day() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
        assert_eq!(pd("2015").earliest(), day("2015-01-01"));
        assert_eq!(pd("2015").latest(), day("2015-12-31"));
        assert_eq!(pd("2024-02").latest(), day("2024-02-29"));
        assert_eq!(pd("9999").latest(), day("9999-12-31"));
        assert_eq!(pd("2015-03-14").latest(), day("2015-03-14"));
    }

    #[test]
    fn dates_sort_by_their_first_day_then_the_rougher_first() {
        let mut dates = [pd("2015-03"), pd("2015-01-01"), pd("2014-12-31"), pd("2015")];
        dates.sort();
        let shown: Vec<String> = dates.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["2014-12-31", "2015", "2015-01-01", "2015-03"]);
        assert!(!pd("2015").wholly_before(&pd("2015-03")));
        assert!(pd("2014").wholly_before(&pd("2015-01")));
    }

    #[test]
    fn stored_text_reads_back_and_old_full_dates_still_read() {
        let old: PartialDate =
            serde_json::from_value(serde_json::json!("2019-03-01")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            old,
            PartialDate::day(NaiveDate::from_ymd_opt(2019, 3, 1).unwrap_or_default())
        );
        assert_eq!(
            serde_json::to_value(pd("2015-03")).ok(),
            Some(serde_json::json!("2015-03"))
        );
        assert!(serde_json::from_value::<PartialDate>(serde_json::json!("March")).is_err());
    }
}
