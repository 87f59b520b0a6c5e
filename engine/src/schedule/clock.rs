//! Time behind a trait, so the scheduler and the ledger's timestamps can be tested without
//! waiting and without races against the wall clock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A future that completes once a clock reaches a deadline.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// Completes once [`Clock::now`] is at or past `deadline` (at once if it already is).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep<'_>;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// tokio sleeps on a monotonic clock that stands still while the machine is suspended, so a
/// long sleep would overshoot a deadline by the time spent suspended. Re-reading the wall clock
/// at least this often bounds the overshoot.
const MAX_SLEEP: Duration = Duration::from_secs(30);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let Ok(left) = (deadline - Utc::now()).to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLEEP)).await;
            }
        })
    }
}

/// A clock that moves only when told to; sleepers wake when it is advanced past their deadline.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
    sleepers: Arc<watch::Sender<usize>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(watch::Sender::new(start)), sleepers: Arc::new(watch::Sender::new(0)) }
    }

    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("a test advances the clock by a sane amount");
        self.now.send_modify(|now| *now += by);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_replace(to);
    }

    /// Waits until at least `count` tasks are parked in [`Clock::sleep_until`]: a test's sync
    /// point for "the code under test has done everything it can do at this instant".
    pub async fn wait_for_sleepers(&self, count: usize) {
        let mut sleepers = self.sleepers.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = sleepers.wait_for(|n| *n >= count).await;
    }
}

/// Counts a parked sleeper for as long as it is alive, including when its future is dropped.
struct Parked<'a>(&'a watch::Sender<usize>);

impl<'a> Parked<'a> {
    fn new(sleepers: &'a watch::Sender<usize>) -> Self {
        sleepers.send_modify(|n| *n += 1);
        Self(sleepers)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep<'_> {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            if *now.borrow_and_update() >= deadline {
                return;
            }
            let _parked = Parked::new(&self.sleepers);
            let _ = now.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn manual_sleep_wakes_only_when_advanced_past_the_deadline() {
        let clock = ManualClock::new(t0());
        let deadline = t0() + chrono::Duration::seconds(60);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(deadline).await }
        });
        clock.wait_for_sleepers(1).await;
        clock.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(*clock.sleepers.borrow(), 0);
    }

    #[tokio::test]
    async fn manual_sleep_into_the_past_returns_at_once() {
        let clock = ManualClock::new(t0());
        clock.sleep_until(t0()).await;
        clock.sleep_until(t0() - chrono::Duration::hours(1)).await;
    }

    #[tokio::test]
    async fn system_sleep_waits_until_the_deadline() {
        let deadline = Utc::now() + chrono::Duration::milliseconds(50);
        SystemClock.sleep_until(deadline).await;
        assert!(SystemClock.now() >= deadline);
    }
}
