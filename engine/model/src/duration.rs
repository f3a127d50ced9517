//! How long something stays valid, as people type it (`30m`, `12h`, `7d`, or plain seconds),
//! and the expiry time it gives. Every duration is at most [`MAX_DAYS`] days, so adding one to
//! the current time can never overflow; [`expiry`] checks the addition anyway.

use std::time::Duration;

use crate::error::{Error, Result, shown};

/// The longest duration accepted: ten years. Invitations, tickets and shared access that
/// should outlive that are renewed, not issued once for ever.
pub const MAX_DAYS: u64 = 3650;

const SECS_PER_DAY: u64 = 86_400;

/// Parse `30s`, `30m`, `12h`, `7d`, or a plain number of seconds: at least one second, at most
/// [`MAX_DAYS`] days.
pub fn parse(text: &str) -> Result<Duration> {
    let trimmed = text.trim();
    let digits = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let invalid = || Error::InvalidDuration { given: shown(text) };
    let per_unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => SECS_PER_DAY,
        _ => return Err(invalid()),
    };
    if number.is_empty() {
        return Err(invalid());
    }
    let too_long = || Error::DurationTooLong {
        given: shown(text),
        max_days: MAX_DAYS,
    };
    // Digits that overflow u64 are a duration far too long, not a typo.
    let n: u64 = number.parse().map_err(|_| too_long())?;
    let secs = n.checked_mul(per_unit).ok_or_else(too_long)?;
    if secs == 0 {
        return Err(Error::ZeroDuration { given: shown(text) });
    }
    if secs > MAX_DAYS * SECS_PER_DAY {
        return Err(too_long());
    }
    Ok(Duration::from_secs(secs))
}

/// The Unix time `ttl` after `now`, refused rather than wrapped if it does not fit.
pub fn expiry(now: i64, ttl: Duration) -> Result<i64> {
    i64::try_from(ttl.as_secs())
        .ok()
        .and_then(|secs| now.checked_add(secs))
        .ok_or(Error::ExpiryOutOfRange {
            now,
            seconds: ttl.as_secs(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_durations_read_as_people_mean_them() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse("45").unwrap(),
            Duration::from_secs(45),
            "plain numbers are seconds"
        );
        assert_eq!(parse("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse(" 12h ").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse("3650d").unwrap(), Duration::from_secs(3650 * 86_400));
    }

    #[test]
    fn durations_that_would_overflow_are_refused_as_too_long() {
        for text in [
            "213503982334601d",
            "9223372036854775807s",
            "18446744073709551615",
            "99999999999999999999999d",
            "3651d",
            "87601h",
        ] {
            match parse(text) {
                Err(Error::DurationTooLong { max_days, .. }) => assert_eq!(max_days, MAX_DAYS),
                other => panic!("`{text}` gave {other:?}"),
            }
        }
    }

    #[test]
    fn zero_and_nonsense_are_refused_with_what_was_typed() {
        assert!(matches!(parse("0d"), Err(Error::ZeroDuration { .. })));
        for text in ["", "d", "7 days", "-5m", "1.5h", "7w", "١٢h"] {
            assert!(
                matches!(parse(text), Err(Error::InvalidDuration { .. })),
                "`{text}`: {:?}",
                parse(text)
            );
        }
        let err = parse("7\u{1b}[2Jd").unwrap_err().to_string();
        assert!(!err.contains('\u{1b}'), "control characters are escaped: {err}");
        assert!(err.contains("7\\u{1b}[2Jd"), "{err}");
    }

    #[test]
    fn an_expiry_past_the_end_of_time_is_refused_not_wrapped() {
        assert_eq!(expiry(1_700_000_000, Duration::from_secs(60)).unwrap(), 1_700_000_060);
        assert!(matches!(
            expiry(i64::MAX - 10, Duration::from_secs(60)),
            Err(Error::ExpiryOutOfRange { .. })
        ));
        assert!(matches!(
            expiry(0, Duration::from_secs(u64::MAX)),
            Err(Error::ExpiryOutOfRange { .. })
        ));
    }
}
