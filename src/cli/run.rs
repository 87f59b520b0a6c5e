//! `bulkflow run`: every flow, until SIGINT or SIGTERM. Stopping is graceful: triggers stop, events
//! in flight get a bounded time to finish, and what is left resumes on the next start.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::flow::duration::HumanDuration;
use bulkflow_engine::runtime::build::{BuildContext, build_flow};
use bulkflow_engine::runtime::engine::Engine;
use bulkflow_engine::schedule::SystemClock;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub engine: GlobalArgs,
    /// How long in-flight events may take to finish after SIGINT/SIGTERM.
    #[arg(long, default_value = "30s", value_parser = HumanDuration::parse)]
    pub shutdown_grace: HumanDuration,
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
        salesforce: Arc::new(bulkflow_engine::salesforce::Clients::new(
            credentials.clone(),
            &config.api_version,
            Default::default(),
        )),
    };
    let mut parts = Vec::new();
    for flow in &loaded.flows {
        match build_flow(flow, &build) {
            Ok(p) => parts.push(p),
            Err(e) => {
                eprintln!("not starting: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    tracing::info!(flows = parts.len(), state = %config.state_dir.display(), "starting");
    let mut engine = Engine::start(parts).await;
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
    engine.stop(args.shutdown_grace.0).await;
    tracing::info!("stopped");
    Ok(code)
}
