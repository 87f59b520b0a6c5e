//! The trigger: each tick opens a run in the ledger (id = flow + scheduled time, so a tick can
//! never open two runs), hands the flow an event carrying `system_info.last_run_time` (the
//! watermark), and records the run's outcome. One run of a flow at a time.

use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, Timelike, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use crate::event::{Event, EventData};
use crate::run::{Checkpoint, Ledger, RunId, RunRecord, RunState, Transition, Update};
use crate::runtime::processor::{BoxFuture, TaskError};
use crate::runtime::source::{Source, SourceContext};
use crate::runtime::token::{Outcome, Token};
use crate::schedule::{Clock, Trigger, drive};

pub struct GenerateSource {
    pub trigger: Trigger,
    pub ledger: Arc<Ledger>,
    pub clock: Arc<dyn Clock>,
}

/// The stage name under which a tick's event is checkpointed.
pub const STAGE: &str = "scheduled";

impl Source for GenerateSource {
    fn run(self: Box<Self>, mut ctx: SourceContext) -> BoxFuture<'static, Result<(), TaskError>> {
        Box::pin(async move {
            ctx.ready();
            // Announcements are taken from before the first look at the ledger, so a run started
            // meanwhile is not missed.
            let mut announced = self.ledger.scheduled_announcements();
            // Runs a crash left at `scheduled` are finished first, under their own ids, so a
            // resumed tick and a new one never overlap.
            for run in self.pending(&ctx)? {
                tracing::info!(flow = ctx.flow, run = %run.id(), "resuming a run interrupted before it finished");
                if self.fire(&ctx, run.scheduled_at(), false).await?.is_break() {
                    return Ok(());
                }
            }
            let last_tick = self.ledger.last_tick(&ctx.flow)?;
            let failure = std::sync::Mutex::new(None);
            // One run fired at a time, by the schedule or by an announcement.
            let firing = tokio::sync::Mutex::new(());
            let ctx = &ctx;
            let fire = |tick: DateTime<Utc>, by_schedule: bool| {
                let (this, failure, firing) = (&self, &failure, &firing);
                async move {
                    let _one = firing.lock().await;
                    loop {
                        // A tick while the store cannot write waits for it rather than failing.
                        if !ctx.store_writable().await {
                            return ControlFlow::Break(());
                        }
                        match this.fire(ctx, tick, by_schedule).await {
                            Ok(flow) => return flow,
                            // The store stopped taking writes mid-tick: the tick again once it does.
                            Err(e) if this.ledger.store_health().failing().is_some() => {
                                tracing::warn!(flow = ctx.flow, %tick, error = %e, "the tick waits for the state store");
                            }
                            Err(e) => {
                                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                return ControlFlow::Break(());
                            }
                        }
                    }
                }
            };
            let driver = drive(&self.trigger, &*self.clock, last_tick, |tick| fire(tick, true));
            // Runs started on demand or retried while the engine runs: fired as announced.
            let announcements = async {
                loop {
                    match announced.recv().await {
                        Ok(flow) if flow == ctx.flow => {}
                        Ok(_) => continue,
                        // Missed announcements: look anyway, the ledger says what waits.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                    let pending = match self.pending(ctx) {
                        Ok(p) => p,
                        Err(e) => {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.into());
                            return;
                        }
                    };
                    for run in pending {
                        tracing::info!(flow = ctx.flow, run = %run.id(), "starting a run scheduled while the engine runs");
                        if fire(run.scheduled_at(), false).await.is_break() {
                            return;
                        }
                    }
                }
            };
            tokio::select! {
                () = driver => {}
                () = announcements => {}
                () = ctx.shutdown.cancelled() => {}
            }
            failure.into_inner().unwrap_or_else(|p| p.into_inner()).map_or(Ok(()), Err)
        })
    }
}

impl GenerateSource {
    /// The flow's runs waiting at `scheduled`, oldest first.
    fn pending(&self, ctx: &SourceContext) -> Result<Vec<RunRecord>, crate::run::LedgerError> {
        let mut pending: Vec<RunRecord> = self
            .ledger
            .resumable_runs()?
            .into_iter()
            .filter(|r| r.flow() == ctx.flow && r.state() == RunState::Scheduled)
            .collect();
        pending.sort_by_key(|r| r.scheduled_at());
        Ok(pending)
    }
}

impl GenerateSource {
    /// Opens (or reopens) the tick's run, emits its event and waits for its outcome. A tick of
    /// the schedule while the flow's previous run is unfinished is skipped: the next tick after
    /// that run ends opens a run whose window starts at the watermark, so nothing is missed.
    async fn fire(
        &self,
        ctx: &SourceContext,
        tick: DateTime<Utc>,
        by_schedule: bool,
    ) -> Result<ControlFlow<()>, TaskError> {
        let tick_run = RunId::new(&ctx.flow, tick);
        if by_schedule
            && self.ledger.get_run(&tick_run)?.is_none()
            && let Some(blocking) = self.ledger.unfinished_run(&ctx.flow, &tick_run)?
        {
            let reason = self.ledger.blocking_reason(&blocking)?;
            tracing::warn!(flow = ctx.flow, %tick, blocked_by = %blocking.id(), "tick skipped: {reason}");
            self.ledger.tick_skipped(&ctx.flow, reason);
            return Ok(ControlFlow::Continue(()));
        }
        let opened = self.ledger.open_run(&ctx.flow, tick)?;
        let id = opened.run.id().clone();
        if opened.run.state() != RunState::Scheduled {
            return Ok(ControlFlow::Continue(()));
        }
        // A resumed run replays the event it was opened with: a run started on demand carries
        // its own `last_run_time` (a backfill), not the watermark's.
        let stored = self.ledger.checkpoint(&id, STAGE)?;
        let event = match stored.and_then(|cp| Event::from_view(&cp.input)) {
            Some(event) => event,
            None => {
                let watermark = self.ledger.watermark(&ctx.flow)?;
                let event = tick_event(&id, &ctx.flow, tick, watermark);
                let cp = Checkpoint::new(STAGE, event.template_view());
                self.ledger.update(&id, &Update::new().checkpoint(cp))?;
                event
            }
        };
        if event.meta.get(ON_DEMAND).is_some_and(|v| v == &json!(true))
            && !self.wait_for_runs_in_flight(ctx, &id).await?
        {
            return Ok(ControlFlow::Break(()));
        }
        let last_run_time = event.template_view().pointer("/data/system_info/last_run_time").cloned();
        tracing::info!(flow = ctx.flow, run = %id, ?last_run_time, "run started");

        let (done_tx, done_rx) = oneshot::channel();
        let ledger = self.ledger.clone();
        let flow = ctx.flow.clone();
        let run = id.clone();
        // The outcome is recorded where it happens, so it lands even if this source is stopping.
        let token = Token::new(move |outcome| {
            record_outcome(&ledger, &flow, &run, &outcome);
            let _ = done_tx.send(outcome);
        });
        crate::fault::point("scheduler.run_opened");
        if ctx.emit(event, token).await.is_err() {
            return Ok(ControlFlow::Break(()));
        }
        tokio::select! {
            outcome = done_rx => Ok(match outcome {
                Ok(Outcome::Abandoned) | Err(_) => ControlFlow::Break(()),
                Ok(_) => ControlFlow::Continue(()),
            }),
            () = ctx.shutdown.cancelled() => Ok(ControlFlow::Break(())),
        }
    }
}

/// Opens a run of `flow` now, outside its schedule: a backfill from `since` (unix seconds; `None`
/// leaves `last_run_time` unset, so the flow's script picks its default window). The flow's
/// trigger fires it after any run of the flow still in flight: at once if the engine runs in this
/// process (the opening is announced), else on the engine's next start.
pub fn open_on_demand(
    ledger: &Ledger,
    flow: &str,
    now: DateTime<Utc>,
    since: Option<i64>,
) -> Result<RunId, crate::run::LedgerError> {
    let mut at = now.with_nanosecond(0).unwrap_or(now);
    // Run ids have a second's precision: a run opened earlier in this second (by the cron or
    // another request) keeps its id, and this one takes the next free second.
    loop {
        let opened = ledger.open_run(flow, at)?;
        if opened.created {
            let id = opened.run.id().clone();
            let mut event = tick_event(&id, flow, at, since);
            event.meta.insert(ON_DEMAND.into(), json!(true));
            ledger.update(&id, &Update::new().checkpoint(Checkpoint::new(STAGE, event.template_view())))?;
            ledger.announce_scheduled(flow);
            return Ok(id);
        }
        at += chrono::Duration::seconds(1);
    }
}

/// Marks the event of a run opened on demand, which waits for the flow's runs in flight.
const ON_DEMAND: &str = "on_demand";

impl GenerateSource {
    /// Waits until no other run of the flow is between `job_created` and `written`; false if the
    /// flow stopped meanwhile.
    async fn wait_for_runs_in_flight(&self, ctx: &SourceContext, id: &RunId) -> Result<bool, TaskError> {
        let mut said = false;
        loop {
            let busy = self
                .ledger
                .list_runs(&crate::run::RunFilter { flow: Some(ctx.flow.clone()), state: None })?
                .into_iter()
                .any(|r| {
                    r.id() != id
                        && !r.state().is_terminal()
                        && !matches!(r.state(), RunState::Scheduled | RunState::Failed)
                });
            if !busy {
                return Ok(true);
            }
            if !said {
                tracing::info!(flow = ctx.flow, run = %id, "on-demand run waits for the flow's run in flight");
                said = true;
            }
            tokio::select! {
                () = ctx.shutdown.cancelled() => return Ok(false),
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }
}

/// The event a tick hands its flow. `last_run_time` is absent until a run of the flow succeeded.
pub fn tick_event(id: &RunId, flow: &str, tick: DateTime<Utc>, watermark: Option<i64>) -> Event {
    let mut system_info = Map::new();
    if let Some(w) = watermark {
        system_info.insert("last_run_time".into(), json!(w));
    }
    system_info.insert("scheduled_time".into(), json!(tick.timestamp()));
    system_info.insert("run_id".into(), json!(id.as_str()));
    let mut meta = Map::new();
    meta.insert(crate::event::meta::RUN_ID.into(), json!(id.as_str()));
    meta.insert("flow".into(), json!(flow));
    Event {
        id: id.as_str().to_string(),
        subject: None,
        data: EventData::Json(json!({ "system_info": Value::Object(system_info) })),
        meta,
        created_at: Utc::now(),
    }
}

fn record_outcome(ledger: &Ledger, flow: &str, run: &RunId, outcome: &Outcome) {
    let result = match outcome {
        Outcome::Completed => match ledger.get_run(run) {
            // A flow that starts no export: its trigger's event finishing is the run's success.
            Ok(Some(r)) if r.state() == RunState::Scheduled => {
                ledger.transition(run, Transition::Advance(RunState::Completed)).map(|_| ())
            }
            // A flow that created a job: the run goes on in the flows that read, publish and write
            // its results, and the watermark moves when it reaches `written`.
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
        Outcome::Failed { task, error } => {
            ledger.transition(run, Transition::Fail(format!("task `{task}`: {error}"))).map(|_| ())
        }
        // Left as it is: the next start resumes it.
        Outcome::Abandoned => Ok(()),
    };
    match (outcome, result) {
        (_, Err(e)) => tracing::error!(flow, run = %run, error = %e, "cannot record the run's outcome"),
        (Outcome::Completed, Ok(())) => tracing::info!(flow, run = %run, "run completed"),
        (Outcome::Failed { task, error }, Ok(())) => tracing::error!(flow, run = %run, task, error, "run failed"),
        (Outcome::Abandoned, Ok(())) => {
            tracing::warn!(flow, run = %run, "run interrupted; it resumes on the next start")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::flow::model::RetryConfig;
    use crate::runtime::engine::{Engine, FlowParts};
    use crate::runtime::graph::{Graph, NodeSpec};
    use crate::runtime::processor::{Emitter, Processor};
    use crate::schedule::ManualClock;
    use crate::store::MemoryStore;

    /// Each tick's scheduled time and the `last_run_time` it carried.
    type Seen = Arc<Mutex<Vec<(i64, Option<i64>)>>>;

    /// Records each event's `last_run_time` and fails the ticks listed in `fail_at`.
    struct Probe {
        seen: Seen,
        fail_at: Vec<i64>,
    }

    impl Processor for Probe {
        fn process<'a>(&'a self, event: Event, _out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
            Box::pin(async move {
                let info = &event.template_view()["data"]["system_info"];
                let tick = info["scheduled_time"].as_i64().unwrap();
                self.seen.lock().unwrap().push((tick, info["last_run_time"].as_i64()));
                if self.fail_at.contains(&tick) {
                    return Err(TaskError::Fatal("the export broke".into()));
                }
                Ok(())
            })
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn the_watermark_moves_only_on_success_and_a_failed_window_is_covered_again() {
        let start = at("2026-11-25T09:00:00Z");
        let clock = Arc::new(ManualClock::new(start));
        let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), clock.clone()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let t = |m: i64| start.timestamp() + m * 60;
        let probe = Probe { seen: seen.clone(), fail_at: vec![t(1)] };
        let parts = FlowParts {
            flow: "q".into(),
            source_task: "trigger".into(),
            source: Box::new(GenerateSource {
                trigger: Trigger::interval(Duration::from_secs(60)).unwrap(),
                ledger: ledger.clone(),
                clock: clock.clone(),
            }),
            is_trigger: true,
            graph: Graph {
                flow: "q".into(),
                nodes: vec![NodeSpec {
                    name: "probe".into(),
                    processor: Arc::new(probe),
                    retry: RetryConfig::default(),
                    children: vec![],
                }],
                roots: vec![0],
            },
        };
        let engine = Engine::start(vec![parts], Default::default()).await;
        let wait_for = |n: usize| {
            let seen = seen.clone();
            async move {
                for _ in 0..500 {
                    if seen.lock().unwrap().len() >= n {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                panic!("only {} ticks", seen.lock().unwrap().len());
            }
        };
        wait_for(1).await; // the first run fires at start
        for n in 2..=4 {
            // Parked until the next tick: the run before it has finished (no overlap).
            clock.wait_for_sleepers(1).await;
            clock.advance(Duration::from_secs(60));
            wait_for(n).await;
        }
        clock.wait_for_sleepers(1).await;
        engine.stop(Duration::from_secs(5)).await;

        // First run: no watermark. Second fails. Third still sees the first run's time.
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, vec![(t(0), None), (t(1), Some(t(0))), (t(2), Some(t(0))), (t(3), Some(t(2)))]);
        assert_eq!(ledger.watermark("q").unwrap(), Some(t(3)));
        let failed = ledger.get_run(&RunId::new("q", at("2026-11-25T09:01:00Z"))).unwrap().unwrap();
        assert_eq!(failed.state(), RunState::Failed);
        assert_eq!(failed.last_error(), Some("task `probe`: the export broke"));
    }
}
