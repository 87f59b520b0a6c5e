//! The one rule that decides which tick a flow fires next, kept pure so every case is a test.

use chrono::{DateTime, Utc};

use super::Trigger;
use super::trigger::truncate_to_second;

/// The scheduled time of the next tick to fire, given the last tick fired for the flow (as
/// persisted) and the current time. Fire it once `now` reaches it; it may already be past.
///
/// - Fresh store (`last_tick` is `None`): fire at once, scheduled now (to the second), so a new
///   deployment exports immediately instead of waiting for the first cron slot.
/// - Ticks missed while down: fire only the latest of them, once. The run's query covers
///   everything since the watermark anyway, so replaying every missed slot would only queue
///   redundant exports.
/// - Otherwise: the schedule's next tick after the last one.
///
/// `None` when the schedule has no tick left (a cron with a past year).
pub fn next_tick(trigger: &Trigger, last_tick: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let Some(last) = last_tick else {
        return Some(truncate_to_second(now));
    };
    let next = trigger.next_after(last)?;
    if next > now {
        return Some(next);
    }
    Some(trigger.latest_between(last, now).unwrap_or(next))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn every_five_minutes() -> Trigger {
        Trigger::cron("*/5 * * * *", None).unwrap()
    }

    #[test]
    fn fresh_store_fires_now_truncated_to_the_second() {
        let now = at("2026-11-25T09:03:27.750Z");
        assert_eq!(next_tick(&every_five_minutes(), None, now), Some(at("2026-11-25T09:03:27Z")));
    }

    #[test]
    fn on_schedule_waits_for_the_next_tick() {
        let last = Some(at("2026-11-25T09:00:00Z"));
        for now in ["2026-11-25T09:00:00Z", "2026-11-25T09:04:59.999Z"] {
            assert_eq!(next_tick(&every_five_minutes(), last, at(now)), Some(at("2026-11-25T09:05:00Z")), "{now}");
        }
    }

    #[test]
    fn a_tick_due_now_fires_with_its_own_time() {
        let last = Some(at("2026-11-25T09:00:00Z"));
        assert_eq!(
            next_tick(&every_five_minutes(), last, at("2026-11-25T09:05:00.300Z")),
            Some(at("2026-11-25T09:05:00Z"))
        );
    }

    #[test]
    fn downtime_fires_one_catch_up_for_the_latest_missed_tick() {
        let last = Some(at("2026-11-25T06:00:00Z"));
        let now = at("2026-11-25T09:03:27Z");
        assert_eq!(next_tick(&every_five_minutes(), last, now), Some(at("2026-11-25T09:00:00Z")));
        // Once that catch-up is recorded, the schedule resumes: no second catch-up.
        assert_eq!(
            next_tick(&every_five_minutes(), Some(at("2026-11-25T09:00:00Z")), now),
            Some(at("2026-11-25T09:05:00Z"))
        );
    }

    #[test]
    fn interval_catches_up_once_then_follows_its_grid() {
        let trigger = Trigger::interval(Duration::from_secs(3600)).unwrap();
        let last = Some(at("2026-11-25T01:30:00Z"));
        assert_eq!(next_tick(&trigger, last, at("2026-11-25T09:10:00Z")), Some(at("2026-11-25T08:30:00Z")));
        assert_eq!(
            next_tick(&trigger, Some(at("2026-11-25T08:30:00Z")), at("2026-11-25T09:10:00Z")),
            Some(at("2026-11-25T09:30:00Z"))
        );
    }

    #[test]
    fn clock_behind_the_last_tick_waits_instead_of_refiring() {
        let last = Some(at("2026-11-25T09:00:00Z"));
        assert_eq!(
            next_tick(&every_five_minutes(), last, at("2026-11-25T08:00:00Z")),
            Some(at("2026-11-25T09:05:00Z"))
        );
    }

    #[test]
    fn exhausted_schedule_has_no_next_tick() {
        let trigger = Trigger::cron("0 0 0 1 1 * 2020", None).unwrap();
        assert_eq!(next_tick(&trigger, Some(at("2020-01-01T00:00:00Z")), at("2026-01-01T00:00:00Z")), None);
    }
}
