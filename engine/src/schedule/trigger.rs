//! What a query flow's trigger says about time: a cron schedule (in a timezone) or a fixed
//! interval. Invalid specs are refused when the trigger is built, not when it first fires.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeZone, Utc};
use chrono_tz::Tz;

use super::cron_expr;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("invalid cron expression {expr:?}: {reason}")]
    Cron { expr: String, reason: String },
    #[error("unknown timezone {0:?}; use an IANA name such as \"Europe/Paris\"")]
    Timezone(String),
    #[error("interval {0:?} is shorter than one second")]
    Interval(Duration),
}

#[derive(Clone, Debug)]
pub struct Trigger(Kind);

#[derive(Clone, Debug)]
enum Kind {
    Cron { schedule: Box<cron::Schedule>, timezone: Tz },
    Interval { every: chrono::Duration },
}

impl Trigger {
    /// A cron trigger, evaluated in `timezone` (an IANA name) or UTC.
    pub fn cron(expr: &str, timezone: Option<&str>) -> Result<Self, TriggerError> {
        let invalid = |reason: String| TriggerError::Cron { expr: expr.to_owned(), reason };
        let normalized = cron_expr::normalize(expr).map_err(invalid)?;
        // The crate's message repeats the expression with a caret; its last line says what is wrong.
        let schedule = cron::Schedule::from_str(&normalized).map_err(|e| {
            let e = e.to_string();
            invalid(e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid").trim().to_string())
        })?;
        let timezone = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| TriggerError::Timezone(name.to_owned()))?,
        };
        Ok(Trigger(Kind::Cron { schedule: Box::new(schedule), timezone }))
    }

    /// A trigger every `every`, counted from the previous tick. Run ids have one-second
    /// resolution, so anything finer could open two runs with one id.
    pub fn interval(every: Duration) -> Result<Self, TriggerError> {
        match chrono::Duration::from_std(every) {
            Ok(d) if d >= chrono::Duration::seconds(1) => Ok(Trigger(Kind::Interval { every: d })),
            _ => Err(TriggerError::Interval(every)),
        }
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.0 {
            Kind::Cron { schedule, timezone } => {
                schedule.after(&after.with_timezone(timezone)).next().map(|t| t.with_timezone(&Utc))
            }
            Kind::Interval { every } => after.checked_add_signed(*every),
        }
    }

    /// The latest tick in `(after, now]`, if any: the one catch-up tick after downtime.
    pub fn latest_between(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let latest = match &self.0 {
            Kind::Cron { schedule, timezone } => {
                // The cron crate steps back to ticks strictly before its start; cron ticks fall on
                // whole seconds, so starting one second past `now` (truncated) includes `now`.
                let from = truncate_to_second(now) + chrono::Duration::seconds(1);
                schedule
                    .after(&timezone.from_utc_datetime(&from.naive_utc()))
                    .next_back()
                    .map(|t| t.with_timezone(&Utc))?
            }
            Kind::Interval { every } => {
                let elapsed = (now - after).num_milliseconds();
                let step = every.num_milliseconds();
                if elapsed < step {
                    return None;
                }
                after + chrono::Duration::milliseconds(elapsed / step * step)
            }
        };
        (latest > after).then_some(latest)
    }
}

pub(crate) fn truncate_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::seconds(1)).expect("truncating a valid time to the second cannot overflow")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn seed_cron_ticks_every_five_minutes() {
        let trigger = Trigger::cron("*/5 * * * *", None).unwrap();
        assert_eq!(trigger.next_after(at("2026-11-25T09:03:27Z")), Some(at("2026-11-25T09:05:00Z")));
        assert_eq!(trigger.next_after(at("2026-11-25T09:05:00Z")), Some(at("2026-11-25T09:10:00Z")));
    }

    #[test]
    fn classic_weekdays_mean_monday_to_friday() {
        let trigger = Trigger::cron("0 9 * * 1-5", None).unwrap();
        // 2026-11-27 is a Friday: the next weekday 09:00 after it is Monday the 30th.
        assert_eq!(trigger.next_after(at("2026-11-27T10:00:00Z")), Some(at("2026-11-30T09:00:00Z")));
    }

    #[test]
    fn timezone_moves_ticks_with_daylight_saving() {
        let trigger = Trigger::cron("0 9 * * *", Some("Europe/Paris")).unwrap();
        assert_eq!(trigger.next_after(at("2026-01-10T00:00:00Z")), Some(at("2026-01-10T08:00:00Z")));
        assert_eq!(trigger.next_after(at("2026-07-10T00:00:00Z")), Some(at("2026-07-10T07:00:00Z")));
    }

    #[test]
    fn invalid_specs_are_refused() {
        assert!(matches!(Trigger::cron("*/5 * * *", None), Err(TriggerError::Cron { .. })));
        assert!(matches!(Trigger::cron("61 * * * *", None), Err(TriggerError::Cron { .. })));
        assert!(matches!(Trigger::cron("* * * * *", Some("Mars/Olympus")), Err(TriggerError::Timezone(_))));
        assert!(matches!(Trigger::interval(Duration::from_millis(999)), Err(TriggerError::Interval(_))));
    }

    #[test]
    fn latest_cron_tick_includes_now_and_excludes_after() {
        let trigger = Trigger::cron("*/5 * * * *", None).unwrap();
        let after = at("2026-11-25T08:00:00Z");
        assert_eq!(trigger.latest_between(after, at("2026-11-25T09:03:27Z")), Some(at("2026-11-25T09:00:00Z")));
        assert_eq!(trigger.latest_between(after, at("2026-11-25T09:05:00Z")), Some(at("2026-11-25T09:05:00Z")));
        assert_eq!(trigger.latest_between(after, at("2026-11-25T08:04:59Z")), None);
    }

    #[test]
    fn latest_interval_tick_is_on_the_grid_of_the_previous_tick() {
        let trigger = Trigger::interval(Duration::from_secs(600)).unwrap();
        let after = at("2026-11-25T08:03:00Z");
        assert_eq!(trigger.latest_between(after, at("2026-11-25T09:00:00Z")), Some(at("2026-11-25T08:53:00Z")));
        assert_eq!(trigger.latest_between(after, at("2026-11-25T08:12:59Z")), None);
        assert_eq!(trigger.next_after(after), Some(at("2026-11-25T08:13:00Z")));
    }
}
