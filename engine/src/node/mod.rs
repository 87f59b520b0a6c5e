//! A running node: the flows of one engine process, with what keeps them healthy — leader
//! election for the flows that ask for it, the completion poller, and compaction of finished
//! runs. `bulkflow run` and
//! `bulkflow demo` both start one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod operator;
pub mod poller;

use poller::Poller;

use crate::flow::Flow;
use crate::lease::{LeaseError, NatsLease};
use crate::run::Ledger;
use crate::runtime::build::{BuildContext, BuildError, build_flow};
use crate::runtime::engine::{Engine, FlowParts};
use crate::runtime::processor::TaskError;

/// How often finished runs older than the retention are compacted.
const COMPACT_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("leader election: {0}")]
    Lease(#[from] LeaseError),
}

pub struct Node {
    engine: Engine,
    election: Option<Election>,
    /// The compactor and the completion poller.
    background: Vec<JoinHandle<()>>,
}

struct Election {
    stop: CancellationToken,
    /// Whether this node holds the lease now, for the control API.
    leading: watch::Receiver<bool>,
    campaign: JoinHandle<()>,
    leader: JoinHandle<()>,
}

impl Node {
    /// Builds every flow (so a bad flow stops the start, not a later election) and starts them:
    /// leader-elected flows only while this node holds the lease when the engine has a
    /// `nats_url`; without one a node is alone (its state directory is locked to one process)
    /// and always leads.
    pub async fn start(
        flows: &[Flow],
        build: BuildContext,
        lease_ttl: Duration,
        grace: Duration,
    ) -> Result<Node, NodeError> {
        let config = &build.config;
        let (elected, always): (Vec<Flow>, Vec<Flow>) =
            flows.iter().cloned().partition(|f| f.require_leader_election && config.nats_url.is_some());
        let parts = build_all(&always, &build)?;
        build_all(&elected, &build)?;
        // Every writer flow is registered now: a run left `published` for want of one may move on.
        if let Err(e) = build.ledger.settle_published() {
            tracing::warn!(error = %e, "cannot settle the runs left published");
        }
        tracing::info!(flows = parts.len(), leader_elected = elected.len(), state = %config.state_dir.display(), "starting");
        let engine = Engine::start(parts, build.ledger.store_health()).await;
        let election = match (&config.nats_url, elected.is_empty()) {
            (Some(url), false) => {
                let holder = format!("{}-{}", std::process::id(), config.state_dir.display());
                let lease = NatsLease::connect(url, holder, lease_ttl, &config.trust).await?;
                let stop = CancellationToken::new();
                let (tx, rx) = watch::channel(false);
                let campaign = tokio::spawn(lease.run(tx, stop.clone()));
                let leading = rx.clone();
                let leader = tokio::spawn(lead(elected, build.clone(), rx, stop.clone(), grace));
                Some(Election { stop, leading, campaign, leader })
            }
            _ => None,
        };
        let compactor = tokio::spawn(compact(build.ledger.clone(), config.retention));
        let poller = Poller::new(
            flows,
            build.ledger.clone(),
            build.salesforce.clone(),
            build.injector.clone(),
            build.buses.clone(),
            config.job_poll_after,
        );
        let poller = tokio::spawn(poller.run());
        let probe = tokio::spawn(probe_store(build.ledger.clone()));
        Ok(Node { engine, election, background: vec![compactor, poller, probe] })
    }

    /// What the flows that cannot listen yet wait for (a bus down at start).
    pub fn waits(&self) -> crate::runtime::source::Waits {
        self.engine.waits()
    }

    /// Whether this node leads its leader-elected flows now; `None` when it has none (or no
    /// `nats_url`), i.e. it runs every flow it has.
    pub fn leading(&self) -> Option<watch::Receiver<bool>> {
        self.election.as_ref().map(|e| e.leading.clone())
    }

    /// Waits until a flow's source ends on its own (an error, or a source that finished). A node
    /// whose every flow is leader-elected has no sources in this engine (they run in the
    /// leader's own) and waits forever: returning at once made a follower node exit.
    pub async fn wait(&mut self) -> Option<(String, Result<(), TaskError>)> {
        match self.engine.wait().await {
            Some(ended) => Some(ended),
            None => std::future::pending().await,
        }
    }

    /// Stops triggers and subscriptions, and gives events in flight `grace` to finish; what is
    /// left resumes on the next start.
    pub async fn stop(self, grace: Duration) {
        for task in &self.background {
            task.abort();
        }
        if let Some(e) = self.election {
            e.stop.cancel();
            let _ = e.leader.await;
            let _ = e.campaign.await;
        }
        self.engine.stop(grace).await;
    }
}

fn build_all(flows: &[Flow], build: &BuildContext) -> Result<Vec<FlowParts>, BuildError> {
    flows.iter().map(|f| build_flow(f, build)).collect()
}

async fn compact(ledger: Arc<Ledger>, retention: Duration) {
    let mut every = tokio::time::interval(COMPACT_EVERY);
    loop {
        every.tick().await;
        match ledger.compact(retention) {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "compacted finished runs past their retention"),
            Err(e) => tracing::warn!(error = %e, "compaction failed"),
        }
    }
}

/// Runs `flows` while `leading` says so: started on winning the lease, stopped on losing it.
async fn lead(
    flows: Vec<Flow>,
    build: BuildContext,
    mut leading: watch::Receiver<bool>,
    stop: CancellationToken,
    grace: Duration,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
        }
        let parts = match build_all(&flows, &build) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the leader-elected flows");
                return;
            }
        };
        tracing::info!(flows = parts.len(), "leading: starting the leader-elected flows");
        let engine = Engine::start(parts, build.ledger.store_health()).await;
        tokio::select! {
            () = stop.cancelled() => {}
            _ = leading.wait_for(|l| !*l) => {}
        }
        tracing::info!("stopping the leader-elected flows");
        engine.stop(grace).await;
        if stop.is_cancelled() {
            return;
        }
    }
}

/// How often a store that stopped taking writes is tried again.
const STORE_PROBE_EVERY: Duration = Duration::from_secs(2);

/// Tries a write every [`STORE_PROBE_EVERY`] while the store does not take writes, so the node
/// takes work again soon after space returns, even when nothing else writes meanwhile.
async fn probe_store(ledger: Arc<Ledger>) {
    let health = ledger.store_health();
    loop {
        tokio::time::sleep(STORE_PROBE_EVERY).await;
        if health.failing().is_some()
            && let Err(e) = ledger.probe_store()
        {
            tracing::debug!(error = %e, "the state store still cannot write");
        }
    }
}
