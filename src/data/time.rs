//! Timestamps as they come in logs: integers (unix seconds or
//! milliseconds, kept as given, since only their order is used; digits at
//! a date's width, `YYYYMMDD` or `YYYYMMDDhhmmss`, are read as dates) or
//! date-time strings in a common format, detected from the values or given
//! as a chrono `strftime` pattern (`--time-format`). Date-times become unix
//! seconds (UTC; a value with an offset is converted).

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// How a time column's strings are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// Integers, kept as they are.
    Integer,
    /// RFC 3339 / ISO-8601 with an offset (`2010-12-01T08:26:00Z`,
    /// `…+01:00`).
    Rfc3339,
    /// A chrono `strftime` pattern; one without an hour reads dates only.
    Pattern(String),
}

impl std::fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeFormat::Integer => f.write_str("integer"),
            TimeFormat::Rfc3339 => f.write_str("rfc3339"),
            TimeFormat::Pattern(p) => f.write_str(p),
        }
    }
}

/// The patterns tried, in order, when none is given. Month-first comes
/// before day-first, so a file whose dates all have a day ≤ 12 reads as
/// month-first (as spreadsheets in the US write them); one value with a
/// first field over 12 makes the whole column day-first.
const PATTERNS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y%m%d%H%M%S",
];

impl TimeFormat {
    /// A user's `--time-format`: `integer`, `rfc3339`, or a chrono pattern
    /// with a year field.
    pub fn from_user(s: &str) -> Result<TimeFormat, String> {
        match s {
            "integer" | "unix" => Ok(TimeFormat::Integer),
            "rfc3339" | "iso8601" => Ok(TimeFormat::Rfc3339),
            p if ["%Y", "%y", "%F", "%s", "%G"].iter().any(|f| p.contains(f)) => {
                Ok(TimeFormat::Pattern(p.to_string()))
            }
            p => Err(format!(
                "`{p}` is not a time format: give `integer`, `rfc3339` or a strftime \
                 pattern with a year (e.g. \"%m/%d/%Y %H:%M\")"
            )),
        }
    }

    /// The value as an integer time, or `None` if it does not read in this
    /// format.
    pub fn parse(&self, s: &str) -> Option<i64> {
        let s = s.trim();
        match self {
            TimeFormat::Integer => s.parse::<i64>().ok(),
            TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp()),
            // With an offset first (a naive read would ignore it), then
            // without, then a date alone (midnight).
            TimeFormat::Pattern(p) => DateTime::parse_from_str(s, p)
                .map(|t| t.timestamp())
                .or_else(|_| NaiveDateTime::parse_from_str(s, p).map(|t| t.and_utc().timestamp()))
                .or_else(|_| {
                    NaiveDate::parse_from_str(s, p).map(|d| {
                        d.and_hms_opt(0, 0, 0)
                            .map_or(0, |t| t.and_utc().timestamp())
                    })
                })
                .ok(),
        }
    }

    /// The format that reads most of `sample` (non-empty values), the
    /// earlier in the list on a tie; `None` when none reads at least 90% of
    /// it (or the sample is empty). Tolerating a few misfits lets a bad
    /// value be reported by its line instead of hiding the format.
    pub fn detect<'a>(sample: impl IntoIterator<Item = &'a str>) -> Option<TimeFormat> {
        let sample: Vec<&str> = sample
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if sample.is_empty() {
            return None;
        }
        // Digits alone at a date's width are dates, not unix times: as unix
        // seconds 8 digits would be 1970–73, and 14 digits as milliseconds
        // the year 2286 on. Read as integers they would keep their order
        // but not their spacing, which time windows and splits use.
        for (width, p) in [(14, "%Y%m%d%H%M%S"), (8, "%Y%m%d")] {
            if sample
                .iter()
                .all(|s| s.len() == width && s.bytes().all(|b| b.is_ascii_digit()))
            {
                let f = TimeFormat::Pattern(p.into());
                if sample.iter().all(|s| f.parse(s).is_some()) {
                    return Some(f);
                }
            }
        }
        let mut candidates = vec![TimeFormat::Integer, TimeFormat::Rfc3339];
        candidates.extend(PATTERNS.iter().map(|p| TimeFormat::Pattern(p.to_string())));
        let mut best: Option<(usize, TimeFormat)> = None;
        for f in candidates {
            let n = sample.iter().filter(|s| f.parse(s).is_some()).count();
            if best.as_ref().is_none_or(|b| n > b.0) {
                best = Some((n, f));
            }
            if n == sample.len() {
                break;
            }
        }
        best.filter(|(n, _)| *n * 10 >= sample.len() * 9)
            .map(|(_, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_formats_are_detected_and_read_as_unix_seconds() {
        // 2010-12-01 08:26:00 UTC.
        let t = 1_291_191_960;
        for (values, want) in [
            (vec!["12/1/2010 8:26", "1/13/2011 10:00"], "%m/%d/%Y %H:%M"),
            (vec!["1/12/2010 8:26", "13/1/2011 10:00"], "%d/%m/%Y %H:%M"),
            (
                vec!["2010-12-01T08:26:00", "2011-01-13T10:00:00.5"],
                "%Y-%m-%dT%H:%M:%S%.f",
            ),
            (vec!["2010-12-01 08:26:00"], "%Y-%m-%d %H:%M:%S%.f"),
        ] {
            let f = TimeFormat::detect(values.iter().copied()).unwrap();
            assert_eq!(f, TimeFormat::Pattern(want.into()), "{values:?}");
            assert_eq!(f.parse(values[0]), Some(t), "{values:?}");
        }
        let f = TimeFormat::detect(["2010-12-01T09:26:00+01:00"]).unwrap();
        assert_eq!(
            (f.clone(), f.parse("2010-12-01T09:26:00+01:00")),
            (TimeFormat::Rfc3339, Some(t))
        );
        let f = TimeFormat::detect(["2010-12-01", "2011-01-13"]).unwrap();
        assert_eq!(f.parse("2010-12-01"), Some(t - (8 * 3600 + 26 * 60)));
        // Integers stay as they are, seconds or milliseconds.
        let f = TimeFormat::detect(["978300760", "978300760123"]).unwrap();
        assert_eq!(
            (f.clone(), f.parse("978300760123")),
            (TimeFormat::Integer, Some(978300760123))
        );
    }

    #[test]
    fn digit_stamps_of_a_date_width_are_dates() {
        let t = 1_291_191_960;
        let f = TimeFormat::detect(["20101201082600", "20110113100000"]).unwrap();
        assert_eq!(f, TimeFormat::Pattern("%Y%m%d%H%M%S".into()));
        assert_eq!(f.parse("20101201082600"), Some(t));
        let f = TimeFormat::detect(["20101201", "20110113"]).unwrap();
        assert_eq!(f.parse("20101201"), Some(t - (8 * 3600 + 26 * 60)));
        // Not a date (month 13, or another width): integers as before.
        for v in [
            ["20101301082600", "20110113100000"],
            ["978300760", "978300761"],
        ] {
            assert_eq!(TimeFormat::detect(v), Some(TimeFormat::Integer), "{v:?}");
        }
    }

    #[test]
    fn nothing_is_detected_from_values_no_format_reads() {
        assert_eq!(TimeFormat::detect(["yesterday", "12/1/2010 8:26"]), None);
        // One misfit in twenty still tells the format; its row is reported.
        let mut v = vec!["12/1/2010 8:26"; 19];
        v.push("yesterday");
        assert_eq!(
            TimeFormat::detect(v),
            Some(TimeFormat::Pattern("%m/%d/%Y %H:%M".into()))
        );
        assert_eq!(TimeFormat::detect(["", " "]), None);
    }

    #[test]
    fn a_given_pattern_is_checked_and_used() {
        assert!(TimeFormat::from_user("%H:%M").is_err());
        assert!(TimeFormat::from_user("dd/mm/yyyy").is_err());
        let f = TimeFormat::from_user("%d %b %Y %H:%M").unwrap();
        assert_eq!(f.parse("01 Dec 2010 08:26"), Some(1_291_191_960));
        assert_eq!(f.parse("12/1/2010 8:26"), None);
        assert_eq!(
            TimeFormat::from_user("integer").unwrap(),
            TimeFormat::Integer
        );
        // 12-hour clocks and offsets keep their time of day and zone.
        let f = TimeFormat::from_user("%m/%d/%Y %I:%M %p").unwrap();
        assert_eq!(f.parse("12/1/2010 08:26 AM"), Some(1_291_191_960));
        let f = TimeFormat::from_user("%Y-%m-%d %H:%M:%S %z").unwrap();
        assert_eq!(f.parse("2010-12-01 09:26:00 +0100"), Some(1_291_191_960));
    }
}
