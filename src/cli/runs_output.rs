//! What `bulkflow runs` prints, the same whether the runs came from the control API or the state
//! store: a table for people, `--json` in a stable shape for scripts.

use std::process::ExitCode;

use anyhow::Context;
use bulkflow_engine::run::{Checkpoint, RunId, RunRecord, waiting_reason_in};
use chrono::SecondsFormat;
use serde_json::{Value, json};

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
