//! A flow's cron expression and its occurrences.
//!
//! OIH uses cron-parser, which takes 5 fields (minute first) or 6 (second first), and the
//! flow-repository accepts what cronstrue accepts (up to 7 fields, the last a year). croner's
//! default parser takes all three forms. Occurrences are computed in UTC (OIH uses the server's
//! local time zone, which is UTC in its containers).

use chrono::{DateTime, SecondsFormat, Utc};

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    pattern: String,
}

/// The expression does not parse, or never occurs again.
#[derive(Debug, thiserror::Error)]
#[error("cron expression {pattern:?}: {source}")]
pub struct ScheduleError {
    pattern: String,
    source: croner::errors::CronError,
}

impl Schedule {
    pub fn parse(pattern: &str) -> Result<Self, ScheduleError> {
        match pattern.parse::<croner::Cron>() {
            Ok(cron) => Ok(Self {
                cron,
                pattern: pattern.to_owned(),
            }),
            Err(source) => Err(ScheduleError {
                pattern: pattern.to_owned(),
                source,
            }),
        }
    }

    /// The first occurrence strictly after `instant` (whole seconds).
    pub fn next_after(&self, instant: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        self.cron
            .find_next_occurrence(&instant, false)
            .map_err(|source| ScheduleError {
                pattern: self.pattern.clone(),
                source,
            })
    }
}

/// JavaScript's `Date.prototype.toISOString()` form, as OIH puts dates on the wire.
pub fn iso(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32, s: u32, ms: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 4, h, m, s)
            .single()
            .expect("valid")
            + chrono::Duration::milliseconds(i64::from(ms))
    }

    #[test]
    fn five_fields_count_minutes() {
        let every_five = Schedule::parse("*/5 * * * *").expect("parse");
        assert_eq!(
            every_five.next_after(at(10, 2, 30, 0)).expect("next"),
            at(10, 5, 0, 0)
        );
        // Strictly after: a run due now is not found again.
        assert_eq!(
            every_five.next_after(at(10, 5, 0, 0)).expect("next"),
            at(10, 10, 0, 0)
        );
    }

    #[test]
    fn six_fields_count_seconds() {
        let every_second = Schedule::parse("* * * * * *").expect("parse");
        assert_eq!(
            every_second.next_after(at(10, 2, 30, 500)).expect("next"),
            at(10, 2, 31, 0)
        );
        let at_ten = Schedule::parse("10 * * * * *").expect("parse");
        assert_eq!(
            at_ten.next_after(at(10, 2, 30, 0)).expect("next"),
            at(10, 3, 10, 0)
        );
    }

    #[test]
    fn garbage_and_impossible_dates_are_errors() {
        assert!(Schedule::parse("not a cron").is_err());
        assert!(Schedule::parse("* * *").is_err());
        let february_30 = Schedule::parse("0 0 30 2 *").expect("parses");
        assert!(february_30.next_after(at(0, 0, 0, 0)).is_err());
    }

    #[test]
    fn iso_matches_javascript() {
        assert_eq!(iso(at(10, 2, 3, 40)), "2026-03-04T10:02:03.040Z");
    }
}
