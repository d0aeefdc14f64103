//! .NET `TimeSpan` strings (`08:00:00`, `00:05:00`, `1.00:00:00`, `00:00:30.5`) as
//! [`std::time::Duration`]: the service is .NET and its JSON carries timespans in that notation.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

const EXPECTED: &str =
    "a timespan [d.]hh:mm[:ss[.fffffff]] such as \"08:00:00\", \"00:05:00\" or \"1.00:00:00\"";

/// .NET's `TimeSpan.MaxValue` (10675199.02:48:05.4775807) in whole seconds: the service cannot
/// hold a longer span, and the module adds spans to Unix times as `i64`, which this keeps safe.
pub const MAX_TIMESPAN_SECS: u64 = 922_337_203_685;

/// Parses `[d.]hh:mm[:ss[.fffffff]]` or a bare number of days, as .NET `TimeSpan.Parse` does.
/// Negative spans are rejected: nothing in the settings can sensibly be negative.
pub fn parse_timespan(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected {EXPECTED}, found {text:?}");
    let s = text.trim();
    if s.is_empty() || s.starts_with('-') {
        return Err(bad());
    }
    let number = |part: &str, max: u64| -> Result<u64, String> {
        if part.is_empty()
            || part.len() > 2 && max != u64::MAX
            || !part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let n: u64 = part.parse().map_err(|_| bad())?;
        if n > max { Err(bad()) } else { Ok(n) }
    };
    if !s.contains(':') {
        let days = number(s, u64::MAX)?;
        return days
            .checked_mul(86_400)
            .filter(|s| *s <= MAX_TIMESPAN_SECS)
            .map(Duration::from_secs)
            .ok_or_else(bad);
    }
    let mut fields: Vec<&str> = s.split(':').collect();
    if fields.len() > 3 {
        return Err(bad());
    }
    // `d.hh` in the first field, `ss.fffffff` in the third.
    let (days, hours) = match fields[0].split_once('.') {
        Some((d, h)) => (number(d, u64::MAX)?, number(h, 23)?),
        None => (0, number(fields[0], 23)?),
    };
    let minutes = number(fields[1], 59)?;
    let (seconds, nanos) = match fields.get_mut(2) {
        None => (0, 0),
        Some(sec) => match sec.split_once('.') {
            None => (number(sec, 59)?, 0),
            Some((whole, frac)) => {
                if frac.is_empty() || frac.len() > 7 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let padded = format!("{frac:0<9}");
                (
                    number(whole, 59)?,
                    padded.parse::<u32>().map_err(|_| bad())?,
                )
            }
        },
    };
    let secs = days
        .checked_mul(86_400)
        .and_then(|d| d.checked_add(hours * 3600 + minutes * 60 + seconds))
        .filter(|s| *s <= MAX_TIMESPAN_SECS)
        .ok_or_else(bad)?;
    Ok(Duration::new(secs, nanos))
}

/// Formats as .NET's constant ("c") format: `hh:mm:ss`, `d.hh:mm:ss`, with 7 fractional digits
/// only when there is a fraction.
pub fn format_timespan(d: Duration) -> String {
    let total = d.as_secs();
    let (days, rest) = (total / 86_400, total % 86_400);
    let hms = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    let frac = if d.subsec_nanos() == 0 {
        String::new()
    } else {
        format!(".{:07}", d.subsec_nanos() / 100)
    };
    if days > 0 {
        format!("{days}.{hms}{frac}")
    } else {
        format!("{hms}{frac}")
    }
}

/// `#[serde(with = "timespan")]` for `Duration` fields.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_timespan(&text).map_err(serde::de::Error::custom)
}

pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timespan(*d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_the_service_uses() {
        assert_eq!(
            parse_timespan("08:00:00"),
            Ok(Duration::from_secs(8 * 3600))
        );
        assert_eq!(parse_timespan("00:05:00"), Ok(Duration::from_secs(300)));
        assert_eq!(
            parse_timespan("1.00:00:00"),
            Ok(Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_timespan("2.03:04:05"),
            Ok(Duration::from_secs(2 * 86_400 + 3 * 3600 + 4 * 60 + 5))
        );
        assert_eq!(
            parse_timespan("00:00:30.5"),
            Ok(Duration::from_millis(30_500))
        );
        assert_eq!(parse_timespan("01:30"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_timespan("3"), Ok(Duration::from_secs(3 * 86_400)));
    }

    #[test]
    fn rejects_what_dotnet_rejects() {
        for bad in [
            "",
            "8h",
            "24:00:00",
            "00:60:00",
            "00:00:60",
            "-00:05:00",
            "1:2:3:4",
            "00:00:01.",
            "00:00:01.12345678",
            "a.00:00:00",
            "PT8H",
            // Longer than TimeSpan.MaxValue (found by fuzzing: the module's Unix-time
            // arithmetic overflowed).
            "10675200.00:00:00",
            "10675200",
            "213503982334601.00:00:00",
        ] {
            let err = parse_timespan(bad).expect_err(bad);
            assert!(err.contains("expected a timespan"), "{err}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "08:00:00",
            "00:05:00",
            "1.00:00:00",
            "00:00:30.5000000",
            "3.04:05:06",
            "10675199.02:48:05",
        ] {
            let d = parse_timespan(s).expect(s);
            assert_eq!(format_timespan(d), s);
        }
    }
}
