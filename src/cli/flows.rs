//! `bulkflow flows status`: each flow's watermark (what its next run exports from) and last tick.

use std::process::ExitCode;

use bulkflow_engine::run::{RunFilter, RunState};
use chrono::{DateTime, SecondsFormat};
use clap::{Args, Subcommand};
use serde_json::json;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct FlowsArgs {
    #[command(flatten)]
    pub engine: GlobalArgs,
    #[command(subcommand)]
    pub command: FlowsCommand,
}

#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Watermark, last tick and run counts of every flow in the workflows folder.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: FlowsArgs) -> anyhow::Result<ExitCode> {
    let config = args.engine.engine_config()?;
    let FlowsCommand::Status(args) = args.command;
    let loaded = super::load_flows(&config)?;
    let ledger = super::state::open_existing(&config.state_dir)?;
    let mut rows = Vec::new();
    for flow in &loaded.flows {
        let runs = ledger.list_runs(&RunFilter { flow: Some(flow.name.clone()), state: None })?;
        let count = |s: RunState| runs.iter().filter(|r| r.state() == s).count();
        let watermark = ledger.watermark(&flow.name)?;
        let iso = |secs: i64| DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        rows.push(json!({
            "flow": flow.name,
            "watermark": watermark,
            "watermark_at": watermark.and_then(iso),
            "last_tick": ledger.last_tick(&flow.name)?.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            "runs": runs.len(),
            "failed": count(RunState::Failed),
            "in_flight": runs.iter().filter(|r| !r.state().is_terminal() && r.state() != RunState::Failed).count(),
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<45} {:<22} {:<22} {:>6} {:>7} {:>9}",
            "FLOW", "WATERMARK", "LAST TICK", "RUNS", "FAILED", "IN FLIGHT"
        );
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            let n = |k: &str| r[k].as_u64().unwrap_or(0);
            println!(
                "{:<45} {:<22} {:<22} {:>6} {:>7} {:>9}",
                s("flow"),
                s("watermark_at"),
                s("last_tick"),
                n("runs"),
                n("failed"),
                n("in_flight")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
