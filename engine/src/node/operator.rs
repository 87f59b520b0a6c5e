//! What an operator does to runs, from `bulkflow runs` on a stopped store or through the control
//! API of a running engine alike: start a run of a flow now, cancel a run (and abort its job).

use std::path::Path;

use crate::config::EngineConfig;
use crate::credentials::CredentialsRoot;
use crate::flow::{Flow, LoadContext, LoadIoError, Loaded, TaskKind, load_dir};
use crate::run::{Ledger, LedgerError, RunId, RunRecord, Transition};
use crate::salesforce::{Clients, SalesforceError, bulk};
use crate::tasks::generate::source::open_on_demand;
use crate::tasks::salesforce_bulkapi_query_job::config::Operation;

/// The flows of the configured workflows folder, read with the process environment: what the
/// engine runs, and what operator actions act on.
pub fn load_flows(config: &EngineConfig) -> Result<Loaded, LoadIoError> {
    let credentials = CredentialsRoot::new(config.credentials_root.clone());
    let env = |name: &str| std::env::var(name).ok();
    let ctx = LoadContext { resources_dir: &config.resources_dir, credentials: &credentials, env: &env };
    load_dir(&config.workflows_dir, &ctx)
}

/// Why a run of a flow cannot be started; the text is what `runs start` prints.
#[derive(Debug, thiserror::Error)]
pub enum StartRefused {
    #[error("no flow `{flow}` in {dir}")]
    NoFlow { flow: String, dir: String },
    #[error("flow `{0}` does not start with a `generate` trigger; only such flows have runs")]
    NotTriggered(String),
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
}

/// Opens a run of `flow` (one of `flows`, read from `workflows_dir`) on demand; `since`: unix
/// seconds.
pub fn start_run(
    flows: &[Flow],
    workflows_dir: &Path,
    ledger: &Ledger,
    flow: &str,
    since: Option<i64>,
) -> Result<Result<RunId, StartRefused>, OperatorError> {
    let Some(flow) = flows.iter().find(|f| f.name == flow) else {
        return Ok(Err(StartRefused::NoFlow { flow: flow.to_owned(), dir: workflows_dir.display().to_string() }));
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

/// Cancels the run, then aborts its job with the credentials of the flow's job-creating task.
pub async fn cancel_run(
    config: &EngineConfig,
    flows: &[Flow],
    ledger: &Ledger,
    id: &RunId,
    reason: &str,
) -> Result<Cancelled, OperatorError> {
    let run = ledger.transition(id, Transition::Cancel(reason.into()))?;
    let Some(job) = run.job_id().map(str::to_owned) else { return Ok(Cancelled { run, abort: None }) };
    let credentials =
        flows.iter().filter(|f| f.name == run.flow()).flat_map(|f| &f.tasks).find_map(|t| match &t.kind {
            TaskKind::BulkQueryJob { config, .. } if config.operation == Operation::Create => {
                Some(config.credentials_path.clone())
            }
            _ => None,
        });
    let Some(path) = credentials else {
        let why = format!("flow `{}` is not in {}", run.flow(), config.workflows_dir.display());
        return Ok(Cancelled { run, abort: Some((job, Err(why))) });
    };
    let clients = Clients::new(
        CredentialsRoot::new(config.credentials_root.clone()),
        &config.api_version,
        config.client_settings(),
    );
    let client = clients.get(Path::new(&path))?;
    let outcome = bulk::abort_job(&client, &job).await.map(|info| info.state).map_err(|e| e.to_string());
    Ok(Cancelled { run, abort: Some((job, outcome)) })
}
