//! Fires a flow's ticks in order, one at a time.

use std::future::Future;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use super::{Clock, Trigger, next_tick};

/// Fires `fire(scheduled_at)` for each tick of `trigger`, starting from `last_tick` (the last
/// tick persisted for the flow, `None` on a fresh store), until `fire` breaks or the schedule
/// runs out.
///
/// Each `fire` future is awaited before the next tick is even computed, so one flow never has
/// two runs in flight: a tick that comes due meanwhile fires after the run ends, once, as the
/// catch-up tick. Dropping the returned future stops the driver (and the run in flight).
pub async fn drive<F, Fut>(trigger: &Trigger, clock: &dyn Clock, mut last_tick: Option<DateTime<Utc>>, mut fire: F)
where
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: Future<Output = ControlFlow<()>>,
{
    while let Some(tick) = next_tick(trigger, last_tick, clock.now()) {
        if tick > clock.now() {
            clock.sleep_until(tick).await;
            // Recompute rather than fire `tick`: if the clock jumped far ahead while we slept
            // (a suspended VM), the rule picks the latest due tick instead of a stale one.
            continue;
        }
        tracing::debug!(%tick, "firing scheduled tick");
        if fire(tick).await.is_break() {
            return;
        }
        last_tick = Some(tick);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};
    use tokio::task::JoinHandle;

    use super::*;
    use crate::schedule::ManualClock;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// A driver whose runs report their scheduled time and then wait until the test ends them.
    struct Harness {
        clock: ManualClock,
        fired: mpsc::UnboundedReceiver<(DateTime<Utc>, oneshot::Sender<()>)>,
        driver: JoinHandle<()>,
    }

    impl Harness {
        fn start(now: &str, last_tick: Option<&str>) -> Self {
            let clock = ManualClock::new(at(now));
            let (tx, fired) = mpsc::unbounded_channel();
            let trigger = Trigger::cron("*/5 * * * *", None).unwrap();
            let last_tick = last_tick.map(at);
            let driver = tokio::spawn({
                let clock = clock.clone();
                async move {
                    drive(&trigger, &clock, last_tick, |tick| {
                        let (done, finished) = oneshot::channel();
                        tx.send((tick, done)).unwrap();
                        async move {
                            let _ = finished.await;
                            ControlFlow::Continue(())
                        }
                    })
                    .await;
                }
            });
            Self { clock, fired, driver }
        }

        /// Waits for the next run to start; returns its tick and the handle that ends it.
        async fn next_run(&mut self) -> (DateTime<Utc>, oneshot::Sender<()>) {
            self.fired.recv().await.unwrap()
        }

        /// Waits until the driver is asleep and checks that it started nothing on the way.
        async fn assert_idle(&mut self) {
            self.clock.wait_for_sleepers(1).await;
            assert!(self.fired.try_recv().is_err(), "no run may start while idle");
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.driver.abort();
        }
    }

    #[tokio::test]
    async fn first_run_fires_at_start_then_the_schedule_follows() {
        let mut h = Harness::start("2026-11-25T09:03:27.400Z", None);
        let (tick, done) = h.next_run().await;
        assert_eq!(tick, at("2026-11-25T09:03:27Z"));
        done.send(()).unwrap();
        h.assert_idle().await;

        h.clock.advance(Duration::from_secs(92)); // 09:04:59.4
        h.assert_idle().await;
        h.clock.advance(Duration::from_secs(1)); // 09:05:00.4
        let (tick, _done) = h.next_run().await;
        assert_eq!(tick, at("2026-11-25T09:05:00Z"));
    }

    #[tokio::test]
    async fn downtime_fires_exactly_one_catch_up() {
        let mut h = Harness::start("2026-11-25T09:03:27Z", Some("2026-11-25T06:00:00Z"));
        let (tick, done) = h.next_run().await;
        assert_eq!(tick, at("2026-11-25T09:00:00Z"));
        done.send(()).unwrap();
        h.assert_idle().await;

        h.clock.set(at("2026-11-25T09:05:00Z"));
        let (tick, _done) = h.next_run().await;
        assert_eq!(tick, at("2026-11-25T09:05:00Z"));
    }

    #[tokio::test]
    async fn ticks_due_during_a_run_fire_once_after_it() {
        let mut h = Harness::start("2026-11-25T09:00:00Z", Some("2026-11-25T08:55:00Z"));
        let (tick, done) = h.next_run().await;
        assert_eq!(tick, at("2026-11-25T09:00:00Z"));

        // The run takes 17 minutes: three ticks come due while it is in flight.
        for _ in 0..17 {
            h.clock.advance(Duration::from_secs(60));
            tokio::task::yield_now().await;
            assert!(h.fired.try_recv().is_err(), "a second run started while one was in flight");
        }
        done.send(()).unwrap();

        let (tick, done) = h.next_run().await;
        assert_eq!(tick, at("2026-11-25T09:15:00Z"));
        done.send(()).unwrap();
        h.assert_idle().await;

        h.clock.set(at("2026-11-25T09:20:00Z"));
        let (tick, _done) = h.next_run().await;
        assert_eq!(tick, at("2026-11-25T09:20:00Z"));
    }

    #[tokio::test]
    async fn a_break_from_the_run_stops_the_driver() {
        let clock = ManualClock::new(at("2026-11-25T09:00:00Z"));
        let trigger = Trigger::interval(Duration::from_secs(1)).unwrap();
        let mut fired = Vec::new();
        drive(&trigger, &clock, None, |tick| {
            fired.push(tick);
            async { ControlFlow::Break(()) }
        })
        .await;
        assert_eq!(fired, [at("2026-11-25T09:00:00Z")]);
    }
}
