//! `bulkflow runs list|show|start|retry|cancel`: the run ledger, for people (a table) and scripts
//! (`--json`), and the changes an operator makes to it while the engine is stopped.

use std::process::ExitCode;

use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::node::operator::{self, CANCEL_REASON, Cancelled, StartRefused};
use bulkflow_engine::run::{Ledger, RunFilter, RunId, Transition};

use super::runs_args::StartArgs;
pub use super::runs_args::{RunsArgs, RunsCommand};
use super::runs_output::{parse_id, print_cancelled, print_list, print_show};

pub async fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let config = args.engine.engine_config()?;
    if let Some(client) = super::runs_api::engine_client(&config).await? {
        return super::runs_api::run(client, &config, args.command).await;
    }
    // Starting a run may be the first thing done with a new state directory.
    let ledger = match &args.command {
        RunsCommand::Start(_) => super::state::open(&config.state_dir)?,
        _ => super::state::open_existing(&config.state_dir)?,
    };
    match args.command {
        RunsCommand::Start(args) => return start(&config, &ledger, args),
        RunsCommand::Retry(args) => {
            let id = parse_id(&args.id)?;
            let run = ledger.transition(&id, Transition::Retry)?;
            println!("{} {} (attempt {})", id, run.state().as_str(), run.attempts());
        }
        RunsCommand::Cancel(args) => return cancel(&config, &ledger, &parse_id(&args.id)?).await,
        RunsCommand::List(args) => {
            let filter = RunFilter { flow: args.flow, state: args.status };
            print_list(ledger.list_runs(&filter)?, args.json)?;
        }
        RunsCommand::Show(args) => {
            let id = parse_id(&args.id)?;
            let Some(run) = ledger.get_run(&id)? else {
                eprintln!("no run {id} in {}", config.state_dir.display());
                return Ok(ExitCode::from(2));
            };
            print_show(&run, &ledger.checkpoints(&id)?, args.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn start(config: &EngineConfig, ledger: &Ledger, args: StartArgs) -> anyhow::Result<ExitCode> {
    match start_run(config, ledger, &args.flow, args.since.map(|t| t.timestamp()))? {
        Ok(id) => {
            println!("{id} scheduled; it starts when the engine starts");
            Ok(ExitCode::SUCCESS)
        }
        Err(refused) => {
            eprintln!("{refused}");
            Ok(ExitCode::from(2))
        }
    }
}

async fn cancel(config: &EngineConfig, ledger: &Ledger, id: &RunId) -> anyhow::Result<ExitCode> {
    let cancelled = cancel_run(config, ledger, id, CANCEL_REASON).await?;
    Ok(print_cancelled(id, &cancelled.abort))
}

/// Opens a run of `flow` on demand (`since`: unix seconds), for `runs start` on a stopped store
/// and for the control API of a running engine alike.
pub fn start_run(
    config: &EngineConfig,
    ledger: &Ledger,
    flow: &str,
    since: Option<i64>,
) -> anyhow::Result<Result<RunId, StartRefused>> {
    let loaded = super::load_flows(config)?;
    Ok(operator::start_run(&loaded.flows, &config.workflows_dir, ledger, flow, since)?)
}

/// Cancels the run, then aborts its job with the credentials of the flow's job-creating task.
pub async fn cancel_run(config: &EngineConfig, ledger: &Ledger, id: &RunId, reason: &str) -> anyhow::Result<Cancelled> {
    let loaded = super::load_flows(config)?;
    Ok(operator::cancel_run(config, &loaded.flows, ledger, id, reason).await?)
}
