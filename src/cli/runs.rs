//! `bulkflow runs list|show|start|retry|cancel`: the run ledger, for people (a table) and scripts
//! (`--json`), and the changes an operator makes to it while the engine is stopped.

use std::process::ExitCode;

use anyhow::Context;
use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::flow::TaskKind;
use bulkflow_engine::run::{Checkpoint, Ledger, RunFilter, RunId, RunRecord, RunState, Transition, waiting_reason_in};
use bulkflow_engine::salesforce::{Clients, bulk};
use bulkflow_engine::tasks::generate::source::open_on_demand;
use bulkflow_engine::tasks::salesforce_bulkapi_query_job::config::Operation;
use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub engine: GlobalArgs,
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List(ListArgs),
    /// One run with its transitions and checkpoints.
    Show(ShowArgs),
    /// Open a run of a query flow now, outside its schedule (a backfill with --since); it starts
    /// when the engine starts, after the flow's run in flight.
    Start(StartArgs),
    /// Retry a failed run from the state it failed in.
    Retry(IdArgs),
    /// Cancel a run that has not finished, aborting its Salesforce job.
    Cancel(IdArgs),
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The flow, e.g. `salesforce_bulkapi_query_account`.
    pub flow: String,
    /// Export records modified since this time (RFC 3339, e.g. 2026-01-01T00:00:00Z): the run's
    /// `last_run_time`. Without it the flow's script chooses its default window.
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The run id, e.g. `salesforce_bulkapi_query_account@2026-11-25T09:05:00Z`.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this flow's runs.
    #[arg(long)]
    pub flow: Option<String>,
    /// Only runs in this state (scheduled, job_created, ..., completed, failed, cancelled).
    #[arg(long)]
    pub status: Option<RunState>,
    /// One JSON array of run objects.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id, e.g. `salesforce_bulkapi_query_account@2026-11-25T09:05:00Z`.
    pub id: String,
    #[arg(long)]
    pub json: bool,
}

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

/// `runs list`'s output, newest first.
pub fn print_list(mut runs: Vec<RunRecord>, as_json: bool) -> anyhow::Result<()> {
    runs.sort_by_key(|r| std::cmp::Reverse(r.scheduled_at()));
    if as_json {
        println!("{}", serde_json::to_string_pretty(&runs.iter().map(run_json).collect::<Vec<_>>())?);
    } else {
        print_table(&runs);
    }
    Ok(())
}

/// `runs show`'s output.
pub fn print_show(run: &RunRecord, checkpoints: &[Checkpoint], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        let mut v = run_json(run);
        v["history"] = run
            .history()
            .iter()
            .map(|h| json!({"from": h.from, "to": h.to, "at": ts(h.at), "error": h.error}))
            .collect();
        v["checkpoints"] = checkpoints.iter().map(checkpoint_json).collect();
        v["waiting"] = json!(waiting_reason_in(run, checkpoints));
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_run(run, checkpoints);
    }
    Ok(())
}

pub fn parse_id(text: &str) -> anyhow::Result<RunId> {
    text.parse().with_context(|| format!("`{text}` is not a run id (FLOW@TIME, as `bulkflow runs list` shows)"))
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

/// Why a run of a flow cannot be started; the text is what `runs start` prints.
#[derive(Debug, thiserror::Error)]
pub enum StartRefused {
    #[error("no flow `{flow}` in {dir}")]
    NoFlow { flow: String, dir: String },
    #[error("flow `{0}` does not start with a `generate` trigger; only such flows have runs")]
    NotTriggered(String),
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
    let Some(flow) = loaded.flows.iter().find(|f| f.name == flow) else {
        return Ok(Err(StartRefused::NoFlow {
            flow: flow.to_owned(),
            dir: config.workflows_dir.display().to_string(),
        }));
    };
    if !matches!(flow.tasks.first().map(|t| &t.kind), Some(TaskKind::Generate { .. })) {
        return Ok(Err(StartRefused::NotTriggered(flow.name.clone())));
    }
    Ok(Ok(open_on_demand(ledger, &flow.name, chrono::Utc::now(), since)?))
}

/// The reason `runs cancel` records in the run's history.
pub const CANCEL_REASON: &str = "cancelled by `bulkflow runs cancel`";

/// What cancelling a run did.
pub struct Cancelled {
    pub run: RunRecord,
    /// The run's job and what aborting it gave: the job's state, or why it was not aborted.
    pub abort: Option<(String, Result<String, String>)>,
}

async fn cancel(config: &EngineConfig, ledger: &Ledger, id: &RunId) -> anyhow::Result<ExitCode> {
    let cancelled = cancel_run(config, ledger, id, CANCEL_REASON).await?;
    Ok(print_cancelled(id, &cancelled.abort))
}

/// Prints a cancellation as `runs cancel` does, and its exit code.
pub fn print_cancelled(id: &RunId, abort: &Option<(String, Result<String, String>)>) -> ExitCode {
    println!("{id} cancelled");
    match abort {
        None => ExitCode::SUCCESS,
        Some((job, Ok(state))) => {
            println!("job {job} {state}");
            ExitCode::SUCCESS
        }
        Some((job, Err(e))) => {
            eprintln!("job {job} not aborted: {e}");
            ExitCode::from(1)
        }
    }
}

/// Cancels the run, then aborts its job with the credentials of the flow's job-creating task.
pub async fn cancel_run(config: &EngineConfig, ledger: &Ledger, id: &RunId, reason: &str) -> anyhow::Result<Cancelled> {
    let run = ledger.transition(id, Transition::Cancel(reason.into()))?;
    let Some(job) = run.job_id().map(str::to_owned) else { return Ok(Cancelled { run, abort: None }) };
    let loaded = super::load_flows(config)?;
    let credentials =
        loaded.flows.iter().filter(|f| f.name == run.flow()).flat_map(|f| &f.tasks).find_map(|t| match &t.kind {
            TaskKind::BulkQueryJob { config, .. } if config.operation == Operation::Create => {
                Some(config.credentials_path.clone())
            }
            _ => None,
        });
    let Some(path) = credentials else {
        let why = format!("flow `{}` is not in {}", run.flow(), config.workflows_dir.display());
        return Ok(Cancelled { run, abort: Some((job, Err(why))) });
    };
    let clients =
        Clients::new(CredentialsRoot::new(config.credentials_root.clone()), &config.api_version, Default::default());
    let client = clients.get(std::path::Path::new(&path))?;
    let outcome = bulk::abort_job(&client, &job).await.map(|info| info.state).map_err(|e| e.to_string());
    Ok(Cancelled { run, abort: Some((job, outcome)) })
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The stable JSON shape scripts read.
fn run_json(r: &RunRecord) -> Value {
    json!({
        "id": r.id().as_str(),
        "flow": r.flow(),
        "state": r.state(),
        "failed_in": r.failed_in(),
        "scheduled_at": r.scheduled_at().to_rfc3339_opts(SecondsFormat::Secs, true),
        "job_id": r.job_id(),
        "attempts": r.attempts(),
        "last_error": r.last_error(),
        "total_batches": r.total_batches(),
        "created_at": ts(r.created_at()),
        "updated_at": ts(r.updated_at()),
    })
}

fn checkpoint_json(c: &Checkpoint) -> Value {
    json!({"stage": c.stage, "input": c.input, "progress": c.progress, "updated_at": ts(c.updated_at)})
}

fn print_table(runs: &[RunRecord]) {
    if runs.is_empty() {
        println!("no runs");
        return;
    }
    println!("{:<60} {:<16} {:>8}  {:<20} ERROR", "RUN", "STATE", "ATTEMPTS", "JOB");
    for r in runs {
        println!(
            "{:<60} {:<16} {:>8}  {:<20} {}",
            r.id().as_str(),
            r.state().as_str(),
            r.attempts(),
            r.job_id().unwrap_or("-"),
            r.last_error().unwrap_or("")
        );
    }
}

fn print_run(r: &RunRecord, checkpoints: &[Checkpoint]) {
    println!("run        {}", r.id().as_str());
    println!("flow       {}", r.flow());
    println!("state      {}", r.state().as_str());
    println!("scheduled  {}", ts(r.scheduled_at()));
    println!("job        {}", r.job_id().unwrap_or("-"));
    println!("attempts   {}", r.attempts());
    if let Some(why) = waiting_reason_in(r, checkpoints) {
        println!("waiting    {why}");
    }
    if let Some(e) = r.last_error() {
        println!("error      {e}");
    }
    println!("history");
    for h in r.history() {
        println!(
            "  {}  {} -> {}{}",
            ts(h.at),
            h.from,
            h.to,
            h.error.as_deref().map(|e| format!("  ({e})")).unwrap_or_default()
        );
    }
    for c in checkpoints {
        println!("checkpoint {} at {}", c.stage, ts(c.updated_at));
    }
}
