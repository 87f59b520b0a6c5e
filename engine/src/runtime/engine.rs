//! Starting and stopping every flow. Subscriptions start first and report ready before any trigger
//! fires, so a job created by the first tick cannot finish before its listener listens. Stopping
//! halts the sources, lets in-flight events finish within a grace period, then abandons the rest
//! (they are delivered again after a restart).

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::graph::Graph;
use super::source::{Source, SourceContext};

/// How long triggers wait for subscriptions to be ready before firing anyway (with a warning).
pub const READY_WAIT: Duration = Duration::from_secs(30);

/// One flow, built and ready to start.
pub struct FlowParts {
    pub flow: String,
    pub source_task: String,
    pub source: Box<dyn Source>,
    /// Triggers start after every other source is ready.
    pub is_trigger: bool,
    pub graph: Graph,
}

pub struct Engine {
    shutdown: CancellationToken,
    sources: JoinSet<(String, Result<(), super::processor::TaskError>)>,
    workers: JoinSet<()>,
    waits: super::source::Waits,
    health: crate::store::StoreHealth,
}

impl Engine {
    /// Starts `parts`; their sources take no new work while `health` says the store cannot write.
    pub async fn start(parts: Vec<FlowParts>, health: crate::store::StoreHealth) -> Self {
        let shutdown = CancellationToken::new();
        let mut engine = Self {
            shutdown: shutdown.clone(),
            sources: JoinSet::new(),
            workers: JoinSet::new(),
            waits: super::source::Waits::default(),
            health,
        };
        let (triggers, subscriptions): (Vec<_>, Vec<_>) = parts.into_iter().partition(|p| p.is_trigger);
        let mut ready = Vec::new();
        for p in subscriptions {
            ready.push((p.flow.clone(), engine.start_flow(p)));
        }
        // One deadline for all: N sources waiting on one missing bus hold the start READY_WAIT,
        // not N times it.
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        for (flow, rx) in ready {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(())) => tracing::debug!(flow, "source ready"),
                Ok(Err(_)) => tracing::warn!(flow, "source stopped before it was ready"),
                Err(_) => {
                    tracing::warn!(flow, wait = ?READY_WAIT, "source not ready in time; starting triggers anyway")
                }
            }
        }
        for p in triggers {
            drop(engine.start_flow(p));
        }
        engine
    }

    fn start_flow(&mut self, p: FlowParts) -> oneshot::Receiver<()> {
        let running = p.graph.spawn();
        let (ready_tx, ready_rx) = oneshot::channel();
        let ctx = SourceContext {
            flow: p.flow.clone(),
            task: p.source_task,
            shutdown: self.shutdown.child_token(),
            outputs: running.inputs,
            ready: Some(ready_tx),
            waits: self.waits.clone(),
            health: self.health.clone(),
        };
        let flow = p.flow;
        let source = p.source;
        self.sources.spawn(async move { (flow, source.run(ctx).await) });
        let mut workers = running.workers;
        self.workers.spawn(async move { while workers.join_next().await.is_some() {} });
        ready_rx
    }

    /// Wait until every source has stopped by itself (e.g. a failed subscription), or forever.
    pub async fn wait(&mut self) -> Option<(String, Result<(), super::processor::TaskError>)> {
        match self.sources.join_next().await {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                Some(("?".into(), Err(super::processor::TaskError::Fatal(format!("source panicked: {e}")))))
            }
            None => None,
        }
    }

    /// What the sources that cannot listen yet wait for.
    pub fn waits(&self) -> super::source::Waits {
        self.waits.clone()
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stop sources, drain in-flight events for up to `grace`, then abandon what is left.
    pub async fn stop(mut self, grace: Duration) {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        let drain = async {
            while let Some(r) = self.sources.join_next().await {
                if let Ok((flow, Err(e))) = r {
                    tracing::warn!(flow, error = %e, "source ended with an error while stopping");
                }
            }
            while self.workers.join_next().await.is_some() {}
        };
        if tokio::time::timeout_at(deadline, drain).await.is_err() {
            tracing::warn!(grace = ?grace, "in-flight events did not finish in time; they will be delivered again on restart");
            self.sources.abort_all();
            self.workers.abort_all();
            while self.sources.join_next().await.is_some() {}
            while self.workers.join_next().await.is_some() {}
        }
    }
}
