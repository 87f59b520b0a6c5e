//! `bulkflow run`: every flow, until SIGINT or SIGTERM. Stopping is graceful: triggers stop, events
//! in flight get a bounded time to finish, and what is left resumes on the next start.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bulkflow_engine::bus::registry::BusRegistry;
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::flow::Flow;
use bulkflow_engine::flow::duration::HumanDuration;
use bulkflow_engine::lease::NatsLease;
use bulkflow_engine::runtime::build::{BuildContext, BuildError, build_flow};
use bulkflow_engine::runtime::engine::{Engine, FlowParts};
use bulkflow_engine::schedule::SystemClock;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub engine: GlobalArgs,
    /// How long in-flight events may take to finish after SIGINT/SIGTERM.
    #[arg(long, default_value = "30s", value_parser = HumanDuration::parse)]
    pub shutdown_grace: HumanDuration,
    /// With `nats_url`: how long the leader lease lives without renewal, i.e. the longest a
    /// crashed leader's flows stay unrun before another node takes over.
    #[arg(long, default_value = "15s", value_parser = HumanDuration::parse)]
    pub leader_lease_ttl: HumanDuration,
}

/// How often finished runs older than the retention are compacted.
const COMPACT_EVERY: Duration = Duration::from_secs(3600);

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.engine.engine_config()?;
    let loaded = super::load_flows(&config)?;
    let credentials = CredentialsRoot::new(config.credentials_root.clone());
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    if loaded.has_errors() {
        eprintln!("not starting: the flows in {} have errors", config.workflows_dir.display());
        return Ok(ExitCode::from(2));
    }
    if loaded.flows.is_empty() {
        eprintln!("not starting: no flow files in {}", config.workflows_dir.display());
        return Ok(ExitCode::from(2));
    }

    let ledger = Arc::new(super::state::open(&config.state_dir)?);
    let build = BuildContext {
        ledger: ledger.clone(),
        clock: Arc::new(SystemClock),
        config: config.clone(),
        credentials: credentials.clone(),
        env: Arc::new(|name: &str| std::env::var(name).ok()),
        buses: Arc::new(BusRegistry::new(Some(config.state_dir.clone()), credentials.clone())),
        salesforce: Arc::new(bulkflow_engine::salesforce::Clients::new(
            credentials.clone(),
            &config.api_version,
            Default::default(),
        )),
    };
    // Leader-elected flows run here only while this node leads; alone (no nats_url) it always does.
    let (elected, always): (Vec<Flow>, Vec<Flow>) =
        loaded.flows.iter().cloned().partition(|f| f.require_leader_election && config.nats_url.is_some());
    let parts = match build_all(&always, &build) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("not starting: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // Build once up front so a bad flow stops the start, not a later election.
    if let Err(e) = build_all(&elected, &build) {
        eprintln!("not starting: {e}");
        return Ok(ExitCode::from(2));
    }
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    tracing::info!(flows = parts.len(), leader_elected = elected.len(), state = %config.state_dir.display(), "starting");
    let mut engine = Engine::start(parts).await;
    let election = match (&config.nats_url, elected.is_empty()) {
        (Some(url), false) => {
            let holder = format!("{}-{}", std::process::id(), config.state_dir.display());
            let lease = NatsLease::connect(url, holder, args.leader_lease_ttl.0).await?;
            let stop = CancellationToken::new();
            let (tx, rx) = watch::channel(false);
            let campaign = tokio::spawn(lease.run(tx, stop.clone()));
            let leader = tokio::spawn(lead(elected, build.clone(), rx, stop.clone(), args.shutdown_grace.0));
            Some((stop, campaign, leader))
        }
        _ => None,
    };
    let compactor = {
        let ledger = ledger.clone();
        let retention = config.retention;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(COMPACT_EVERY);
            loop {
                every.tick().await;
                match ledger.compact(retention) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(runs = n, "compacted finished runs past their retention"),
                    Err(e) => tracing::warn!(error = %e, "compaction failed"),
                }
            }
        })
    };

    let code = tokio::select! {
        _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); ExitCode::SUCCESS }
        _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); ExitCode::SUCCESS }
        ended = engine.wait() => {
            match ended {
                Some((flow, Err(e))) => { tracing::error!(flow, error = %e, "a flow's source failed; stopping"); ExitCode::from(1) }
                _ => ExitCode::SUCCESS,
            }
        }
    };
    compactor.abort();
    if let Some((stop, campaign, leader)) = election {
        stop.cancel();
        let _ = leader.await;
        let _ = campaign.await;
    }
    engine.stop(args.shutdown_grace.0).await;
    tracing::info!("stopped");
    Ok(code)
}

fn build_all(flows: &[Flow], build: &BuildContext) -> Result<Vec<FlowParts>, BuildError> {
    flows.iter().map(|f| build_flow(f, build)).collect()
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
        let engine = Engine::start(parts).await;
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
