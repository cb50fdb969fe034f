//! When scheduled retrains run: every fixed interval (`30m`, `6h`, `1d`,
//! parsed by humantime) or at the times of a standard 5-field cron
//! expression in UTC (parsed and evaluated by croner).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// A retrain schedule. See the module docs.
#[derive(Clone, Debug)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// `--every`: an interval of at least one second.
    pub fn every(s: &str) -> Result<Schedule, String> {
        let d = humantime::parse_duration(s)
            .map_err(|e| format!("--every {s:?}: {e} (examples: 90s, 30m, 6h, 1d)"))?;
        if d < Duration::from_secs(1) {
            return Err(format!("--every {s:?}: the interval must be at least 1s"));
        }
        Ok(Schedule::Every(d))
    }

    /// `--cron`: minute hour day-of-month month day-of-week, in UTC.
    pub fn cron(s: &str) -> Result<Schedule, String> {
        use std::str::FromStr;
        let c = croner::Cron::from_str(s).map_err(|e| format!("--cron {s:?}: {e}"))?;
        // An expression that never fires (30 February) is refused now, not
        // discovered at the first tick.
        c.find_next_occurrence(&Utc::now(), false)
            .map_err(|e| format!("--cron {s:?}: {e}"))?;
        Ok(Schedule::Cron(Box::new(c)))
    }

    /// The first run time strictly after `t`.
    pub fn next_after(&self, t: SystemTime) -> SystemTime {
        match self {
            Schedule::Every(d) => t + *d,
            Schedule::Cron(c) => {
                let now: DateTime<Utc> = t.into();
                c.find_next_occurrence(&now, false)
                    .map(SystemTime::from)
                    // Checked when parsed; a far tick if the calendar runs out.
                    .unwrap_or(t + Duration::from_secs(365 * 86_400))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .into()
    }

    #[test]
    fn intervals_and_cron_times() {
        let e = Schedule::every("30m").unwrap();
        let t = at("2026-11-25T10:07:00Z");
        assert_eq!(e.next_after(t), at("2026-11-25T10:37:00Z"));
        let c = Schedule::cron("*/15 * * * *").unwrap();
        assert_eq!(c.next_after(t), at("2026-11-25T10:15:00Z"));
        // Strictly after: a run at a tick waits for the next one.
        assert_eq!(
            c.next_after(at("2026-11-25T10:15:00Z")),
            at("2026-11-25T10:30:00Z")
        );
        let daily = Schedule::cron("0 3 * * *").unwrap();
        assert_eq!(daily.next_after(t), at("2026-11-26T03:00:00Z"));
    }

    #[test]
    fn refuses_bad_schedules() {
        assert!(Schedule::every("0s").unwrap_err().contains("at least 1s"));
        assert!(Schedule::every("soon").is_err());
        assert!(Schedule::cron("61 * * * *").is_err());
        assert!(Schedule::cron("0 0 30 2 *").is_err());
    }
}
