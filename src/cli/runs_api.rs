//! `bulkflow runs` while an engine runs: the engine holds the state store's lock, so the commands
//! go through its control API instead, and print exactly what they print reading the store.

use std::process::ExitCode;

use bulkflow_control_proto as pb;
use bulkflow_control_proto::client::{Address, Client, connect};
use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::run::{Checkpoint, RunRecord};
use tonic::Code;

use super::runs_args::RunsCommand;
use super::runs_output as runs;
use bulkflow_engine::node::operator::CANCEL_REASON;

/// The control API of the engine running on `config`'s state directory, if one answers.
pub async fn engine_client(config: &EngineConfig) -> anyhow::Result<Option<Client>> {
    let socket = crate::control::socket_path(&config.state_dir);
    if !socket.exists() {
        return Ok(None);
    }
    let token = client_token(config)?;
    // A socket nobody answers on is an engine that died: the store is free to open directly.
    Ok(connect(&Address::Unix(socket), token.as_deref()).await.ok())
}

/// The token a client sends: the engine's own token file or environment variable, if set.
pub fn client_token(config: &EngineConfig) -> anyhow::Result<Option<String>> {
    let token = crate::control::auth::load_token(
        config.control_token_file.as_deref(),
        std::env::var(crate::control::auth::TOKEN_ENV).ok(),
    )?;
    Ok(token.map(|t| t.reveal().to_owned()))
}

fn record(run: Option<pb::Run>) -> anyhow::Result<RunRecord> {
    let run = run.ok_or_else(|| anyhow::anyhow!("the engine answered without the run"))?;
    Ok(serde_json::from_str(&run.record_json)?)
}

/// The engine's refusal, worded as the direct path words it.
fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

pub async fn run(mut client: Client, config: &EngineConfig, command: RunsCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunsCommand::Start(args) => {
            let request = pb::StartRunRequest { flow: args.flow, since: args.since.map(|t| t.timestamp()) };
            match client.start_run(request).await {
                Ok(r) => println!(
                    "{} scheduled; the running engine starts it now (after the flow's run in flight, if any)",
                    r.into_inner().id
                ),
                Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => {
                    eprintln!("{}", s.message());
                    return Ok(ExitCode::from(2));
                }
                Err(s) => return Err(refused(s)),
            }
        }
        RunsCommand::Retry(args) => {
            let id = runs::parse_id(&args.id)?;
            let run = client.retry_run(pb::RunRef { id: id.to_string() }).await.map_err(refused)?;
            let run = record(Some(run.into_inner()))?;
            println!("{} {} (attempt {})", id, run.state().as_str(), run.attempts());
        }
        RunsCommand::Cancel(args) => {
            let id = runs::parse_id(&args.id)?;
            let request = pb::CancelRunRequest { id: id.to_string(), reason: CANCEL_REASON.into() };
            let r = client.cancel_run(request).await.map_err(refused)?.into_inner();
            let abort = r.job_id.map(|job| match (r.job_state, r.abort_error) {
                (Some(state), _) => (job, Ok(state)),
                (None, e) => (job, Err(e.unwrap_or_default())),
            });
            return Ok(runs::print_cancelled(&id, &abort));
        }
        RunsCommand::List(args) => {
            let request = pb::ListRunsRequest { flow: args.flow, state: args.status.map(|s| s.as_str().to_owned()) };
            let response = client.list_runs(request).await.map_err(refused)?.into_inner();
            let runs = response.runs.into_iter().map(|r| record(Some(r))).collect::<anyhow::Result<Vec<_>>>()?;
            runs::print_list(runs, args.json)?;
        }
        RunsCommand::Show(args) => {
            let id = runs::parse_id(&args.id)?;
            let detail = match client.get_run(pb::RunRef { id: id.to_string() }).await {
                Ok(d) => d.into_inner(),
                Err(s) if s.code() == Code::NotFound => {
                    eprintln!("no run {id} in {}", config.state_dir.display());
                    return Ok(ExitCode::from(2));
                }
                Err(s) => return Err(refused(s)),
            };
            let run = record(detail.run)?;
            let checkpoints = detail
                .checkpoints_json
                .iter()
                .map(|c| serde_json::from_str::<Checkpoint>(c))
                .collect::<Result<Vec<_>, _>>()?;
            runs::print_show(&run, &checkpoints, args.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
