//! Settling messages once their event's journey ended: ack on success; nak with the backoff on
//! failure; on the last allowed delivery, terminate and record the failure on the event's run, so
//! a batch that cannot be written is visible in `runs show` rather than silently dropped.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::bus::{BusError, Delivered};
use crate::run::{Ledger, Transition};
use crate::runtime::processor::BoxFuture;
use crate::runtime::token::Outcome;

/// The most ended events recorded and settled as one group.
const MAX_SETTLED_TOGETHER: usize = 64;

/// The nak delay after a failure when the flow sets no `backoff`.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// How long one ack, nak or term may take. async-nats waits for the server's confirmation with a
/// timeout of its own, yet an ack sent as nats-server was SIGKILLed was seen waiting for ever; the
/// settler settles a flow's events one after another, so every event behind it waited too, its
/// batch written again at each redelivery and never recorded, without a word in the log. Past
/// this, the settle has failed: the bus delivers the message again, and a batch already recorded
/// written is then acknowledged and dropped.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// `settle` (an ack, nak or term), failed with [`BusError::Timeout`] past `limit`.
pub async fn bounded(limit: Duration, settle: BoxFuture<'static, Result<(), BusError>>) -> Result<(), BusError> {
    tokio::time::timeout(limit, settle).await.unwrap_or(Err(BusError::Timeout(limit)))
}

/// One event's ending, with the messages that carried it.
pub struct Settle {
    pub outcome: Outcome,
    pub messages: Vec<(Delivered, OwnedSemaphorePermit)>,
    /// The highest delivery count among the messages.
    pub delivered: u32,
    pub event_id: String,
    pub meta: Map<String, Value>,
}

pub struct Settler {
    pub flow: String,
    pub max_deliver: Option<u32>,
    pub backoff: Vec<Duration>,
    pub ledger: Arc<Ledger>,
    /// [`SETTLE_TIMEOUT`] but in tests.
    pub settle_timeout: Duration,
}

impl Settler {
    /// Settles events as they end. Whatever ended while the previous ones were being settled is
    /// taken together: their batches are recorded written in one ledger commit per run (a
    /// commit is an fsync; one per batch was most of a writer's ledger time), then each settles.
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<Settle>) {
        let mut ended = Vec::new();
        while rx.recv_many(&mut ended, MAX_SETTLED_TOGETHER).await > 0 {
            let unrecorded = self.record_written(&ended);
            for s in ended.drain(..) {
                let recorded = !unrecorded.contains(&s.event_id);
                self.settle(s, recorded).await;
            }
        }
    }

    /// The nak delay after the `delivered`-th delivery failed: the backoff list's entry for it,
    /// its last entry beyond, as JetStream reads `BackOff`.
    pub fn delay(&self, delivered: u32) -> Duration {
        let i = usize::try_from(delivered.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff.get(i).or(self.backoff.last()).copied().unwrap_or(DEFAULT_BACKOFF)
    }

    /// Whether the `delivered`-th delivery is the last the bus allows.
    pub fn is_last(&self, delivered: u32) -> bool {
        is_last_delivery(self.max_deliver, delivered)
    }

    /// `recorded`: whether a completed event's batch is recorded written (see `record_written`).
    async fn settle(&self, s: Settle, recorded: bool) {
        let Settle { outcome, messages, delivered, event_id, meta } = s;
        let flow = &self.flow;
        tracing::debug!(flow, event = event_id, delivery = delivered, ?outcome, messages = messages.len(), "settling");
        match outcome {
            Outcome::Completed => {
                // Durable before the ack: once acked, the bus never delivers the batch again.
                if !recorded {
                    drop(messages);
                    return;
                }
                for (m, _permit) in messages {
                    if let Err(e) = bounded(self.settle_timeout, m.ack.ack()).await {
                        tracing::warn!(flow, event = event_id, error = %e, "ack failed; the message will be delivered again");
                    }
                }
            }
            Outcome::Failed { task, error } if self.is_last(delivered) => {
                for (m, _permit) in messages {
                    if let Err(e) = bounded(self.settle_timeout, m.ack.term()).await {
                        tracing::warn!(flow, event = event_id, error = %e, "terminating failed");
                    }
                }
                let message = format!(
                    "flow `{flow}`: event `{event_id}` failed at task `{task}` on its last delivery ({delivered}): {error}"
                );
                tracing::error!(
                    flow,
                    event = event_id,
                    task,
                    deliveries = delivered,
                    error,
                    "giving up on the event after max_deliver"
                );
                record_failure(&self.ledger, flow, &meta, &event_id, message);
            }
            Outcome::Failed { task, error } => {
                let delay = self.delay(delivered);
                tracing::warn!(flow, event = event_id, task, delivery = delivered, error, retry_in = ?delay, "event failed; it will be delivered again");
                // The run waits for this flow meanwhile (a warehouse down, a full disk): it says so.
                let why = format!(
                    "{} task `{task}` failed: {error}; its batches are delivered again with backoff",
                    self.waiting_prefix()
                );
                if let Err(e) = self.ledger.run_of_tag(&crate::event::RunTag::of(&meta)).and_then(|run| match run {
                    Some(run) => self.ledger.note_waiting(&run, &why),
                    None => Ok(()),
                }) {
                    tracing::warn!(flow, event = event_id, error = %e, "cannot record why the run waits");
                }
                for (m, _permit) in messages {
                    if let Err(e) = bounded(self.settle_timeout, m.ack.nak(delay)).await {
                        tracing::warn!(flow, event = event_id, error = %e, "nak failed; the message will be delivered after the ack wait");
                    }
                }
            }
            // The engine stopped mid-way on the event's last allowed delivery: the bus would not
            // deliver it again, so its token already recorded the failure on its run; terminating
            // says so to the bus at once instead of after the ack wait.
            Outcome::Abandoned if self.is_last(delivered) => {
                for (m, _permit) in messages {
                    let _ = bounded(self.settle_timeout, m.ack.term()).await;
                }
            }
            // The engine stopped mid-way: leave it to the bus to deliver again after the ack wait.
            // (Said, since a copy dropped unfinished while the engine runs would otherwise make
            // the event come back after every ack wait without a word.)
            Outcome::Abandoned => {
                tracing::info!(
                    flow,
                    event = event_id,
                    delivery = delivered,
                    "event abandoned unfinished; the bus delivers it again after the ack wait"
                );
                drop(messages)
            }
        }
    }

    /// Records the batches of the completed events in `ended` as written by this flow, one
    /// commit per run; returns the ids of the events whose record failed (said in the log), which
    /// are then not acked and come again.
    fn record_written(&self, ended: &[Settle]) -> std::collections::HashSet<String> {
        let mut runs: std::collections::BTreeMap<crate::run::RunId, Vec<(u64, &str)>> = Default::default();
        let mut failed = std::collections::HashSet::new();
        for s in ended.iter().filter(|s| matches!(s.outcome, Outcome::Completed)) {
            match self.ledger.batch_of(&s.meta) {
                Ok(Some((run, seq))) => runs.entry(run).or_default().push((seq, &s.event_id)),
                Ok(None) => {}
                Err(e) => {
                    self.unrecorded(&s.event_id, &e);
                    failed.insert(s.event_id.clone());
                }
            }
        }
        let prefix = self.waiting_prefix();
        for (run, batches) in runs {
            let seqs: Vec<u64> = batches.iter().map(|(seq, _)| *seq).collect();
            let recorded = self.ledger.batches_written(&run, &self.flow, &seqs).and_then(|_| {
                crate::fault::point("writer.recorded");
                self.ledger.clear_waiting_if(&run, |why| why.starts_with(&prefix))
            });
            if let Err(e) = recorded {
                for (_, event) in batches {
                    self.unrecorded(event, &e);
                    failed.insert(event.to_owned());
                }
            }
        }
        failed
    }

    fn unrecorded(&self, event: &str, e: &crate::run::LedgerError) {
        tracing::error!(flow = self.flow, event, error = %e, "cannot record the batch as written; it will be delivered again");
    }

    /// How this flow's reasons to wait begin, so it clears its own and no other flow's.
    fn waiting_prefix(&self) -> String {
        format!("writer flow `{}`:", self.flow)
    }
}

/// Whether the `delivered`-th delivery is the last the bus allows (`max_deliver`).
pub fn is_last_delivery(max_deliver: Option<u32>, delivered: u32) -> bool {
    max_deliver.is_some_and(|max| delivered >= max)
}

/// Marks the event's run failed (found by `run_id`, else by `job_id`).
pub fn record_failure(ledger: &Ledger, flow: &str, meta: &Map<String, Value>, event_id: &str, message: String) {
    let run = match ledger.run_of_tag(&crate::event::RunTag::of(meta)) {
        Ok(run) => run,
        Err(e) => {
            tracing::error!(flow, event = event_id, error = %e, "cannot look up the event's run");
            None
        }
    };
    let Some(run) = run else {
        tracing::error!(
            flow,
            event = event_id,
            "the failed event names no run (meta run_id or job_id); only this log records it"
        );
        return;
    };
    match ledger.transition(&run, Transition::Fail(message)) {
        Ok(_) => tracing::info!(flow, run = %run, "run marked failed"),
        Err(e) => tracing::warn!(flow, run = %run, error = %e, "cannot mark the run failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_list_gives_the_delay_per_delivery_then_repeats_its_last() {
        let store = Arc::new(crate::store::MemoryStore::new());
        let s = Settler {
            flow: "f".into(),
            max_deliver: Some(5),
            backoff: ["5s", "30s", "1m", "5m"]
                .iter()
                .map(|d| crate::flow::duration::HumanDuration::parse(d).unwrap().0)
                .collect(),
            ledger: Arc::new(Ledger::new(store, Arc::new(crate::schedule::SystemClock))),
            settle_timeout: SETTLE_TIMEOUT,
        };
        assert_eq!(s.delay(1), Duration::from_secs(5));
        assert_eq!(s.delay(2), Duration::from_secs(30));
        assert_eq!(s.delay(4), Duration::from_secs(300));
        assert_eq!(s.delay(9), Duration::from_secs(300));
        let none = Settler { backoff: vec![], ..s };
        assert_eq!(none.delay(1), DEFAULT_BACKOFF);
    }

    /// An acker whose answer never comes, or one that counts its acks.
    enum TestAck {
        Hung,
        Counted(Arc<std::sync::atomic::AtomicUsize>),
    }

    impl crate::bus::Acker for TestAck {
        fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
            Box::pin(async move {
                match *self {
                    TestAck::Hung => std::future::pending().await,
                    TestAck::Counted(n) => {
                        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        Ok(())
                    }
                }
            })
        }
        fn nak(self: Box<Self>, _delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
            self.ack()
        }
        fn term(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
            self.ack()
        }
    }

    /// An ack that never answers ends at the settle timeout, and the events behind it are settled.
    #[tokio::test]
    async fn an_ack_that_never_answers_does_not_hold_the_events_behind_it() {
        let store = Arc::new(crate::store::MemoryStore::new());
        let settler = Settler {
            flow: "f".into(),
            max_deliver: None,
            backoff: vec![],
            ledger: Arc::new(Ledger::new(store, Arc::new(crate::schedule::SystemClock))),
            settle_timeout: Duration::from_millis(100),
        };
        let permits = Arc::new(tokio::sync::Semaphore::new(2));
        let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        for ack in [TestAck::Hung, TestAck::Counted(acked.clone())] {
            let message = Delivered {
                subject: "s".into(),
                headers: Default::default(),
                payload: Default::default(),
                stream_sequence: 1,
                delivered: 1,
                ack: Box::new(ack),
            };
            let permit = permits.clone().acquire_owned().await.unwrap();
            let settle = Settle {
                outcome: Outcome::Completed,
                messages: vec![(message, permit)],
                delivered: 1,
                event_id: "e".into(),
                meta: Map::new(),
            };
            tx.send(settle).unwrap();
        }
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), settler.run(rx)).await.expect("the settler is not held");
        assert_eq!(acked.load(std::sync::atomic::Ordering::SeqCst), 1, "the event behind the hung ack was acked");
        assert_eq!(permits.available_permits(), 2, "both messages were let go");
    }
}
