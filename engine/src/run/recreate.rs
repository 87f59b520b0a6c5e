//! A run whose job vanished in Salesforce (404: deleted, expired after 7 days, a refreshed org)
//! gets a new job for the query its intent recorded, recorded in the old one's place, so it goes
//! on from `job_created` instead of failing.
//!
//! The new job's intent ([`RECREATE_STAGE`]) is recorded before each POST, so a crash between the
//! two is followed by adopting the job the POST made, not by a second one (as the job-creating
//! task does).

use serde_json::json;

use super::{Checkpoint, INTENT_STAGE, Ledger, RECREATE_STAGE, RunRecord, Update};
use crate::salesforce::bulk::{self, CreateJob};
use crate::salesforce::job_create::{self, CreateGuard};
use crate::salesforce::options::{ColumnDelimiter, LineEnding, QueryOperation};
use crate::salesforce::{SalesforceClient, SalesforceError};

/// What became of a vanished job.
#[derive(Debug, PartialEq, Eq)]
pub enum Recreated {
    /// A new job runs the same query in its place.
    Replaced { new_job: String },
    /// The run kept no query to create it again: the run must fail (the next covers its window).
    NoQuery { why: String },
    /// Salesforce or the ledger failed this time; try again later.
    Later,
}

/// Replaces `job` of `run` with a new job for the same query, with the CSV options the flow's
/// job-creating task uses.
pub async fn recreate_job(
    ledger: &Ledger,
    run: &RunRecord,
    job: &str,
    csv: (Option<ColumnDelimiter>, Option<LineEnding>),
    client: &SalesforceClient,
) -> Recreated {
    let why = format!("job {job} no longer exists in Salesforce (deleted or expired)");
    let intent = ledger.checkpoint(run.id(), INTENT_STAGE).ok().flatten();
    let soql = intent.as_ref().and_then(|i| i.input.get("soql")).and_then(|s| s.as_str());
    let operation = match intent.as_ref().and_then(|i| i.input.get("operation")).and_then(|s| s.as_str()) {
        Some("QueryAll") => QueryOperation::QueryAll,
        _ => QueryOperation::Query,
    };
    let Some(soql) = soql else {
        return Recreated::NoQuery {
            why: format!("{why}, and the run kept no query to create it again; the next run covers its window"),
        };
    };
    let request = CreateJob {
        soql,
        operation,
        column_delimiter: csv.0.unwrap_or(ColumnDelimiter::Comma),
        line_ending: csv.1.unwrap_or(LineEnding::Lf),
    };
    let taken = |id: &str| id == job || ledger.run_for_job(id).ok().flatten().is_some();
    let recreating = ledger.checkpoint(run.id(), RECREATE_STAGE).ok().flatten();
    let adopted = match recreating.filter(|cp| cp.input.get("old_job").and_then(|j| j.as_str()) == Some(job)) {
        Some(cp) => match job_create::find_own_job(client, cp.updated_at, &request, &taken).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(run = %run.id(), error = %e, "cannot list jobs to adopt the re-created one; trying again later");
                return Recreated::Later;
            }
        },
        None => None,
    };
    let created = match adopted {
        Some(found) => {
            tracing::info!(run = %run.id(), job = found.id, "adopted the job re-created before a restart");
            Ok(found)
        }
        None => {
            let mut record_intent = || {
                let intent = Checkpoint::new(RECREATE_STAGE, json!({ "old_job": job }));
                ledger
                    .update(run.id(), &Update::new().checkpoint(intent))
                    .map(|r| r.updated_at())
                    .map_err(|e| SalesforceError::State(e.to_string()))
            };
            let guard = CreateGuard { taken: &taken, before_post: &mut record_intent };
            job_create::create_job(client, &request, guard).await
        }
    };
    match created {
        Ok(new) => {
            match ledger.replace_job(run.id(), job, &new.id, &format!("{why}; created job {} in its place", new.id)) {
                Ok(_) => {
                    tracing::warn!(run = %run.id(), old = job, new = new.id, "{why}; created a new job for the run's window");
                    Recreated::Replaced { new_job: new.id }
                }
                Err(e) => {
                    tracing::warn!(run = %run.id(), job = new.id, error = %e, "cannot record the new job; aborting it");
                    let _ = bulk::abort_job(client, &new.id).await;
                    Recreated::Later
                }
            }
        }
        Err(e) => {
            tracing::warn!(run = %run.id(), error = %e, "{why}; creating a new job failed, trying again later");
            Recreated::Later
        }
    }
}
