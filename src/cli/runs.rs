//! `bulkflow runs list|show`: the run ledger, for people (a table) and scripts (`--json`).

use std::process::ExitCode;

use anyhow::Context;
use bulkflow_engine::run::{Checkpoint, RunFilter, RunId, RunRecord, RunState};
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

pub fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let config = args.engine.engine_config()?;
    let ledger = super::state::open_existing(&config.state_dir)?;
    match args.command {
        RunsCommand::List(args) => {
            let filter = RunFilter { flow: args.flow, state: args.status };
            let mut runs = ledger.list_runs(&filter)?;
            runs.sort_by_key(|r| std::cmp::Reverse(r.scheduled_at()));
            if args.json {
                println!("{}", serde_json::to_string_pretty(&runs.iter().map(run_json).collect::<Vec<_>>())?);
            } else {
                print_table(&runs);
            }
        }
        RunsCommand::Show(args) => {
            let id: RunId = args.id.parse().with_context(|| format!("`{}` is not a run id", args.id))?;
            let Some(run) = ledger.get_run(&id)? else {
                eprintln!("no run {id} in {}", config.state_dir.display());
                return Ok(ExitCode::from(2));
            };
            let checkpoints = ledger.checkpoints(&id)?;
            if args.json {
                let mut v = run_json(&run);
                v["history"] = run
                    .history()
                    .iter()
                    .map(|h| json!({"from": h.from, "to": h.to, "at": ts(h.at), "error": h.error}))
                    .collect();
                v["checkpoints"] = checkpoints.iter().map(checkpoint_json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_run(&run, &checkpoints);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
