//! `bulkflow runs`'s command line, shared by the two ways it is carried out: through a running
//! engine's control API (`runs_api`) or on the stopped state store (`runs`).

use bulkflow_engine::run::RunState;
use clap::{Args, Subcommand};

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
