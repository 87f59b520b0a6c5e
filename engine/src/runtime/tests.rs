//! The runtime's promises, on graphs built from small test processors.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::graph::{Graph, NodeSpec};
use super::processor::{BoxFuture, Emitter, Envelope, Processor, TaskError};
use super::token::{Outcome, Token};
use crate::event::Event;
use crate::flow::duration::HumanDuration;
use crate::flow::model::RetryConfig;

struct Pass;
impl Processor for Pass {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move { out.emit(event).await })
    }
}

/// A leaf that records what reached it, optionally slowly.
struct Collect {
    delay: Duration,
    seen: Arc<Mutex<Vec<String>>>,
}
impl Processor for Collect {
    fn process<'a>(&'a self, event: Event, _out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.seen.lock().unwrap().push(event.id);
            Ok(())
        })
    }
}

/// Fails `failures` times (retryably, recording when), then passes.
struct Flaky {
    failures: u32,
    calls: AtomicU32,
    at: Arc<Mutex<Vec<tokio::time::Instant>>>,
    fatal: bool,
}
impl Processor for Flaky {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            self.at.lock().unwrap().push(tokio::time::Instant::now());
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.failures {
                return Err(if self.fatal {
                    TaskError::Fatal(format!("bad data {n}"))
                } else {
                    TaskError::Retryable(format!("flaky {n}"))
                });
            }
            out.emit(event).await
        })
    }
}

fn retry(max_attempts: u32, initial_ms: u64) -> RetryConfig {
    RetryConfig {
        max_attempts: NonZeroU32::new(max_attempts).unwrap(),
        initial_backoff: HumanDuration(Duration::from_millis(initial_ms)),
        max_backoff: HumanDuration(Duration::from_secs(60)),
    }
}

fn node(name: &str, processor: impl Processor, children: Vec<usize>) -> NodeSpec {
    NodeSpec { name: name.into(), processor: Arc::new(processor), retry: retry(1, 0), children }
}

type Outcomes = Arc<Mutex<Vec<(String, Outcome)>>>;

async fn feed(inputs: &[mpsc::Sender<Envelope>], n: usize, outcomes: &Outcomes) {
    for i in 0..n {
        let id = format!("e{i:03}");
        let o = outcomes.clone();
        let rec = id.clone();
        let token = Token::new(move |outcome| o.lock().unwrap().push((rec, outcome)));
        for input in inputs {
            input
                .send(Envelope { event: Event::json(id.clone(), json!({"i": i})), token: token.fork() })
                .await
                .unwrap();
        }
        token.complete();
    }
}

#[tokio::test]
async fn a_slow_branch_neither_loses_nor_reorders_the_fast_one() {
    let fast = Arc::new(Mutex::new(Vec::new()));
    let slow = Arc::new(Mutex::new(Vec::new()));
    let graph = Graph {
        flow: "f".into(),
        nodes: vec![
            node("split", Pass, vec![1, 2]),
            node("fast", Collect { delay: Duration::ZERO, seen: fast.clone() }, vec![]),
            node("slow", Collect { delay: Duration::from_millis(2), seen: slow.clone() }, vec![]),
        ],
        roots: vec![0],
    };
    let mut running = graph.spawn();
    let outcomes: Outcomes = Arc::default();
    feed(&running.inputs, 100, &outcomes).await;
    running.inputs.clear();
    while running.workers.join_next().await.is_some() {}
    let expected: Vec<String> = (0..100).map(|i| format!("e{i:03}")).collect();
    assert_eq!(*fast.lock().unwrap(), expected);
    assert_eq!(*slow.lock().unwrap(), expected);
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), 100);
    assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Completed));
}

#[tokio::test]
async fn an_event_completes_only_after_every_leaf() {
    let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
    struct Gated(tokio::sync::watch::Receiver<bool>);
    impl Processor for Gated {
        fn process<'a>(&'a self, _e: Event, _o: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
            let mut rx = self.0.clone();
            Box::pin(async move {
                rx.wait_for(|open| *open).await.map_err(|e| TaskError::Fatal(e.to_string()))?;
                Ok(())
            })
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let graph = Graph {
        flow: "f".into(),
        nodes: vec![
            node("split", Pass, vec![1, 2]),
            node("quick_leaf", Collect { delay: Duration::ZERO, seen: seen.clone() }, vec![]),
            node("gated_leaf", Gated(gate_rx), vec![]),
        ],
        roots: vec![0],
    };
    let mut running = graph.spawn();
    let outcomes: Outcomes = Arc::default();
    feed(&running.inputs, 1, &outcomes).await;
    // The quick leaf is done, the gated one is not: no outcome yet.
    for _ in 0..50 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(outcomes.lock().unwrap().is_empty(), "completed before every leaf finished");
    gate_tx.send(true).unwrap();
    running.inputs.clear();
    while running.workers.join_next().await.is_some() {}
    assert_eq!(*outcomes.lock().unwrap(), vec![("e000".to_string(), Outcome::Completed)]);
}

/// What a run of `events` events through `flaky → sink` left behind: the flaky task's call
/// times, what reached the sink, and each event's outcome.
struct FlakyRun {
    at: Vec<tokio::time::Instant>,
    seen: Vec<String>,
    outcomes: Vec<(String, Outcome)>,
}

async fn run_flaky(failures: u32, max_attempts: u32, events: usize) -> FlakyRun {
    let at = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut flaky = node("flaky", Flaky { failures, calls: AtomicU32::new(0), at: at.clone(), fatal: false }, vec![1]);
    flaky.retry = retry(max_attempts, 100);
    let graph = Graph {
        flow: "f".into(),
        nodes: vec![flaky, node("sink", Collect { delay: Duration::ZERO, seen: seen.clone() }, vec![])],
        roots: vec![0],
    };
    let mut running = graph.spawn();
    let outcomes: Outcomes = Arc::default();
    feed(&running.inputs, events, &outcomes).await;
    running.inputs.clear();
    while running.workers.join_next().await.is_some() {}
    fn take<T>(m: &Mutex<Vec<T>>) -> Vec<T> {
        std::mem::take(&mut *m.lock().unwrap())
    }
    FlakyRun { at: take(&at), seen: take(&seen), outcomes: take(&outcomes) }
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_then_succeed() {
    let run = run_flaky(2, 3, 1).await;
    assert_eq!(run.at.len(), 3);
    assert_eq!(run.at[1] - run.at[0], Duration::from_millis(100));
    assert_eq!(run.at[2] - run.at[1], Duration::from_millis(200));
    assert_eq!(run.seen, vec!["e000".to_string()]);
    assert_eq!(run.outcomes[0].1, Outcome::Completed);
}

#[tokio::test(start_paused = true)]
async fn after_the_last_attempt_the_event_fails_visibly() {
    let run = run_flaky(3, 3, 2).await;
    assert_eq!(run.at.len(), 4, "3 attempts for the first event; the second passes");
    assert_eq!(run.outcomes[0], ("e000".into(), Outcome::Failed { task: "flaky".into(), error: "flaky 2".into() }));
    assert_eq!(run.outcomes[1], ("e001".into(), Outcome::Completed));
    assert_eq!(run.seen, vec!["e001".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn fatal_errors_are_not_retried() {
    let at = Arc::new(Mutex::new(Vec::new()));
    let mut flaky = node("flaky", Flaky { failures: 1, calls: AtomicU32::new(0), at: at.clone(), fatal: true }, vec![]);
    flaky.retry = retry(5, 100);
    let graph = Graph { flow: "f".into(), nodes: vec![flaky], roots: vec![0] };
    let mut running = graph.spawn();
    let outcomes: Outcomes = Arc::default();
    feed(&running.inputs, 1, &outcomes).await;
    running.inputs.clear();
    while running.workers.join_next().await.is_some() {}
    assert_eq!(at.lock().unwrap().len(), 1);
    assert!(matches!(outcomes.lock().unwrap()[0].1, Outcome::Failed { .. }));
}

#[tokio::test]
async fn stopping_mid_flight_abandons_instead_of_acknowledging() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let graph = Graph {
        flow: "f".into(),
        nodes: vec![node("slow", Collect { delay: Duration::from_secs(3600), seen }, vec![])],
        roots: vec![0],
    };
    let mut running = graph.spawn();
    let outcomes: Outcomes = Arc::default();
    feed(&running.inputs, 1, &outcomes).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    running.workers.abort_all();
    while running.workers.join_next().await.is_some() {}
    assert_eq!(*outcomes.lock().unwrap(), vec![("e000".to_string(), Outcome::Abandoned)]);
}

/// A subscription that takes a while to be ready, and a trigger that notes whether it was.
#[tokio::test]
async fn triggers_start_only_after_subscriptions_are_ready() {
    use super::engine::{Engine, FlowParts};
    use super::source::{Source, SourceContext};
    use std::sync::atomic::AtomicBool;

    struct SlowSubscription(Arc<AtomicBool>);
    impl Source for SlowSubscription {
        fn run(self: Box<Self>, mut ctx: SourceContext) -> BoxFuture<'static, Result<(), TaskError>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.0.store(true, Ordering::SeqCst);
                ctx.ready();
                ctx.shutdown.cancelled().await;
                Ok(())
            })
        }
    }
    struct Trigger(Arc<AtomicBool>, Arc<Mutex<Option<bool>>>);
    impl Source for Trigger {
        fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), TaskError>> {
            Box::pin(async move {
                *self.1.lock().unwrap() = Some(self.0.load(Ordering::SeqCst));
                ctx.shutdown.cancelled().await;
                Ok(())
            })
        }
    }
    let ready = Arc::new(AtomicBool::new(false));
    let saw = Arc::new(Mutex::new(None));
    let flow = |name: &str, source: Box<dyn Source>, is_trigger| FlowParts {
        flow: name.into(),
        source_task: "source".into(),
        source,
        is_trigger,
        graph: Graph { flow: name.into(), nodes: vec![], roots: vec![] },
    };
    // The trigger is listed first: order in the list must not matter.
    let engine = Engine::start(
        vec![
            flow("query", Box::new(Trigger(ready.clone(), saw.clone())), true),
            flow("listener", Box::new(SlowSubscription(ready.clone())), false),
        ],
        Default::default(),
    )
    .await;
    for _ in 0..100 {
        if saw.lock().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    engine.stop(Duration::from_secs(1)).await;
    assert_eq!(*saw.lock().unwrap(), Some(true), "the trigger ran before the subscription was ready");
}
