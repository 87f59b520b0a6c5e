//! `bulkflow run`: every flow, until SIGINT or SIGTERM. Stopping is graceful: triggers stop, events
//! in flight get a bounded time to finish, and what is left resumes on the next start.

use std::process::ExitCode;
use std::sync::Arc;

use bulkflow_engine::flow::duration::HumanDuration;
use bulkflow_engine::node::{Node, NodeError};
use bulkflow_engine::runtime::build::BuildContext;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::GlobalArgs;
use crate::control::Control;

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
    /// Show the terminal UI on this engine; quitting it stops the engine. Logs go to
    /// STATE/bulkflow.log meanwhile.
    #[arg(long)]
    pub tui: bool,
}

/// Where `run --tui` logs.
pub fn log_file(args: &RunArgs) -> std::path::PathBuf {
    let state = args.engine.engine_config().map(|c| c.state_dir).unwrap_or_else(|_| "bulkflow-state".into());
    state.join("bulkflow.log")
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.engine.engine_config()?;
    let loaded = super::load_flows(&config)?;
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
    let build = BuildContext::new(config.clone(), ledger.clone(), Arc::new(|name: &str| std::env::var(name).ok()));
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut node = match Node::start(&loaded.flows, build, args.leader_lease_ttl.0, args.shutdown_grace.0).await {
        Ok(node) => node,
        Err(e @ NodeError::Build(_)) => {
            eprintln!("not starting: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let control = match Control::start(&config, ledger, &loaded.flows, node.leading(), node.waits()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("not starting: {e}");
            node.stop(args.shutdown_grace.0).await;
            return Ok(ExitCode::from(2));
        }
    };
    let tui = async {
        if !args.tui {
            return std::future::pending().await;
        }
        let token = super::runs_api::client_token(&config)?;
        let socket = crate::control::socket_path(&config.state_dir);
        bulkflow_tui::run(bulkflow_control_proto::client::Address::Unix(socket), token, false).await?;
        anyhow::Ok(())
    };
    let code = tokio::select! {
        ended = tui => match ended {
            Ok(()) => { tracing::info!("the terminal UI quit: stopping"); ExitCode::SUCCESS }
            Err(e) => { tracing::error!(error = %e, "the terminal UI failed; stopping"); ExitCode::from(1) }
        },
        _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); ExitCode::SUCCESS }
        _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); ExitCode::SUCCESS }
        ended = node.wait() => {
            match ended {
                Some((flow, Err(e))) => { tracing::error!(flow, error = %e, "a flow's source failed; stopping"); ExitCode::from(1) }
                _ => ExitCode::SUCCESS,
            }
        }
    };
    control.stop().await;
    node.stop(args.shutdown_grace.0).await;
    tracing::info!("stopped");
    Ok(code)
}
