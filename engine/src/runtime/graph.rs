//! A flow as running tokio tasks: one worker per task, bounded queues between them. Each worker
//! handles its events one at a time, in order, retrying with backoff before it gives up on one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::processor::{Emitter, Envelope, Processor};
use crate::flow::model::RetryConfig;

/// Events queued in front of each task; a full queue makes its parent wait.
pub const QUEUE_DEPTH: usize = 16;

pub struct NodeSpec {
    pub name: String,
    pub processor: Arc<dyn Processor>,
    pub retry: RetryConfig,
    /// Indices of the nodes that read this node's output.
    pub children: Vec<usize>,
}

/// The task nodes of one flow, after its source.
pub struct Graph {
    pub flow: String,
    pub nodes: Vec<NodeSpec>,
    /// Nodes that read the source's output.
    pub roots: Vec<usize>,
}

/// A started graph: feed the returned senders (one per root) and await the workers.
pub struct RunningGraph {
    pub inputs: Vec<mpsc::Sender<Envelope>>,
    pub workers: JoinSet<()>,
}

impl Graph {
    pub fn spawn(self) -> RunningGraph {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            self.nodes.iter().map(|_| mpsc::channel::<Envelope>(QUEUE_DEPTH)).unzip();
        let inputs = self.roots.iter().map(|&i| senders[i].clone()).collect();
        let mut workers = JoinSet::new();
        for (node, rx) in self.nodes.into_iter().zip(receivers) {
            let children: Vec<_> = node.children.iter().map(|&i| senders[i].clone()).collect();
            workers.spawn(worker(self.flow.clone(), node, rx, children));
        }
        // Workers hold only their children's senders: when the source's senders are dropped, the
        // queues close in order from the top and every worker drains and exits.
        drop(senders);
        RunningGraph { inputs, workers }
    }
}

async fn worker(flow: String, node: NodeSpec, mut rx: mpsc::Receiver<Envelope>, children: Vec<mpsc::Sender<Envelope>>) {
    while let Some(Envelope { event, token }) = rx.recv().await {
        let mut out = Emitter::new(children.clone(), token);
        let mut attempt = 1u32;
        let result = loop {
            match watched(&flow, &node.name, &event.id, node.processor.process(event.clone(), &mut out)).await {
                Ok(()) => break Ok(()),
                Err(e) if e.is_retryable() && attempt < node.retry.max_attempts.get() => {
                    let wait = node.retry.backoff(attempt);
                    tracing::warn!(flow, task = node.name, event = event.id, attempt, error = %e, wait = ?wait, "task failed; retrying");
                    sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        };
        let Some(token) = out.token.take() else { continue };
        match result {
            Ok(()) => token.complete(),
            Err(e) => {
                tracing::error!(flow, task = node.name, event = event.id, attempts = attempt, error = %e, "task failed; giving up on the event");
                token.fail(&node.name, e.to_string());
            }
        }
    }
}

/// How long a task may work on one event before the log says so, and again at each multiple: a
/// call that never returns (a server that accepted a request and went silent) is otherwise
/// invisible, its event held and every event behind it waiting.
pub const SLOW_TASK_WARN_AFTER: Duration = Duration::from_secs(60);

/// Awaits `work`, saying in the log every [`SLOW_TASK_WARN_AFTER`] that it is still running.
async fn watched<T>(flow: &str, task: &str, event: &str, work: impl Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(SLOW_TASK_WARN_AFTER) => {
                tracing::warn!(flow, task, event, running_for = ?started.elapsed(), "a task is still working on one event");
            }
        }
    }
}

async fn sleep(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}
