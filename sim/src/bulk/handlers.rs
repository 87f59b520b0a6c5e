//! Create, get, list, abort and delete.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::job::{Job, JobRecord, Operation};
use super::{locator, version};
use crate::api_error::ApiError;
use crate::csv_writer::{ColumnDelimiter, LineEnding};
use crate::events::JobState;
use crate::ids;
use crate::oauth::session::Session;
use crate::soql::{self, SoqlError};
use crate::state::{AppState, lock};
use crate::store::results::Results;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateRequest {
    operation: Option<Operation>,
    query: Option<String>,
    content_type: Option<ContentType>,
    column_delimiter: Option<ColumnDelimiter>,
    line_ending: Option<LineEnding>,
}

/// `CSV` is the only content type query jobs take; anything else fails to parse, as on the real API.
#[derive(Deserialize)]
enum ContentType {
    #[serde(rename = "CSV")]
    Csv,
}

fn soql_error(e: SoqlError) -> ApiError {
    ApiError::bad_request(e.error_code, e.message)
}

fn required(field: &str) -> ApiError {
    ApiError::bad_request("INVALIDJOB", format!("InvalidJob : Field {field} is required"))
}

pub async fn create(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path(version): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let api_version = version::parse(&version)?;
    let request: CreateRequest = serde_json::from_slice(&body).map_err(|e| ApiError::json_parse(e.to_string()))?;
    let operation = request.operation.ok_or_else(|| required("operation"))?;
    let soql_text = request.query.ok_or_else(|| required("query"))?;
    // Parsing already refused anything but CSV; there is nothing else to choose.
    let ContentType::Csv = request.content_type.unwrap_or(ContentType::Csv);
    let new = NewJob {
        operation,
        soql: soql_text,
        api_version,
        column_delimiter: request.column_delimiter.unwrap_or_default(),
        line_ending: request.line_ending.unwrap_or_default(),
        created_by_id: app.identity.user_id.clone(),
    };
    Ok(Json(create_job(&app, new).await?).into_response())
}

/// A job to create, from the API or from `POST /__sim/jobs`.
pub struct NewJob {
    pub operation: Operation,
    pub soql: String,
    pub api_version: String,
    pub column_delimiter: ColumnDelimiter,
    pub line_ending: LineEnding,
    pub created_by_id: String,
}

/// Creates a job: runs its query now and schedules its states. Answers the create view.
pub async fn create_job(app: &Arc<AppState>, new: NewJob) -> Result<Value, ApiError> {
    let query = soql::parse(&new.soql).map_err(soql_error)?;
    // The query runs now, so bad fields fail the create with 400 as on the real API; its snapshot
    // is what the job's results serve, whatever the data does afterwards.
    let data = app.data.clone();
    let operation = new.operation;
    let (object, results) = tokio::task::spawn_blocking(move || {
        let data = data.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let scope = match operation {
            Operation::Query => soql::Scope::Live,
            Operation::QueryAll => soql::Scope::WithRecycled,
        };
        let set = soql::execute_in(&query, &data, scope)?;
        let object = data.schema(query.object()).map_or_else(|| query.object().to_string(), |s| s.name.clone());
        Ok::<_, SoqlError>((object, set))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION", e.to_string()))?
    .map_err(soql_error)?;

    let now = Utc::now();
    let latency = chrono::Duration::from_std(app.settings.job_latency).unwrap_or(chrono::Duration::MAX);
    let record = JobRecord {
        id: ids::new_id("750"),
        operation: new.operation,
        object,
        created_by_id: new.created_by_id,
        created_date: now,
        system_modstamp: now,
        state: JobState::UploadComplete,
        api_version: new.api_version,
        column_delimiter: new.column_delimiter,
        line_ending: new.line_ending,
        row_count: results.len() as u64,
        error_message: None,
        planned_failure: app.faults.take_job_failure(),
        in_progress_at: now + latency / 2,
        complete_at: now + latency,
        expires_at: None,
    };
    let view = record.create_view();
    let event = record.event();
    let results = Arc::new(Results::Live(results));
    // Saved before the job is recorded: a persisted org restarted at any moment never has a job
    // without its results (Salesforce does not fail a job because a client crashed).
    if let Some(persist) = app.persist.clone() {
        let (id, saving) = (record.id.clone(), results.clone());
        tokio::task::spawn_blocking(move || persist.save_results(&id, &saving))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION", e.to_string()))?
            .map_err(|e| {
                tracing::warn!(job = %record.id, error = %e, "could not persist results");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN_EXCEPTION",
                    "could not store the job's results",
                )
            })?;
    }
    app.stats.job_created(&record.object);
    tracing::info!(job = %record.id, object = %record.object, rows = record.row_count, created_by = %record.created_by_id, "query job created");
    {
        let mut jobs = lock(&app.jobs);
        let rendered =
            super::rendered::Rendered::start(results.clone(), record.format(), app.settings.max_page_records);
        jobs.insert(record.id.clone(), Job { record, results: Some(results), rendered: Some(rendered) });
        app.persist_jobs(&jobs);
    }
    app.emit(event);
    Ok(view)
}

pub async fn get_job(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path((version, job_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    version::parse(&version)?;
    let jobs = lock(&app.jobs);
    let job = jobs.get(&job_id).ok_or_else(ApiError::not_found)?;
    Ok(Json(job.record.info_view()))
}

pub async fn list(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path(version): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let api_version = version::parse(&version)?;
    let offset = match params.get("queryLocator") {
        None => 0,
        Some(l) => {
            locator::decode(l).ok_or_else(|| ApiError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator"))?
        }
    };
    // Every job here is a V2Query job in Parallel mode; other filters select nothing.
    let type_matches = params.get("jobType").is_none_or(|t| t == "V2Query");
    let mode_matches = params.get("concurrencyMode").is_none_or(|m| m == "Parallel");
    let jobs = lock(&app.jobs);
    let mut records: Vec<&JobRecord> =
        if type_matches && mode_matches { jobs.values().map(|j| &j.record).collect() } else { Vec::new() };
    records.sort_by(|a, b| (a.created_date, &a.id).cmp(&(b.created_date, &b.id)));
    let page_size = app.settings.list_page_size;
    let page: Vec<Value> = records.iter().skip(offset).take(page_size).map(|r| r.list_view()).collect();
    let mut done = offset + page.len() >= records.len();
    let mut next_offset = offset + page.len();
    if app.faults.job_list_loop() {
        app.stats.fault("job_list_loop");
        (done, next_offset) = (false, offset);
    }
    let next = (!done)
        .then(|| format!("/services/data/v{api_version}/jobs/query?queryLocator={}", locator::encode(next_offset)));
    Ok(Json(json!({"done": done, "records": page, "nextRecordsUrl": next})))
}

#[derive(Deserialize)]
struct AbortRequest {
    state: Option<String>,
}

pub async fn abort(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path((version, job_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    version::parse(&version)?;
    let request: AbortRequest = serde_json::from_slice(&body).map_err(|e| ApiError::json_parse(e.to_string()))?;
    let mut jobs = lock(&app.jobs);
    let job = jobs.get_mut(&job_id).ok_or_else(ApiError::not_found)?;
    if request.state.as_deref() != Some("Aborted") {
        return Err(ApiError::bad_request(
            "INVALIDJOBSTATE",
            format!("Invalid state for a query job: {}", request.state.unwrap_or_default()),
        ));
    }
    if !matches!(job.record.state, JobState::UploadComplete | JobState::InProgress) {
        return Err(ApiError::bad_request(
            "INVALIDJOBSTATE",
            format!("Aborting a job in state {:?} is not allowed", job.record.state),
        ));
    }
    let now = Utc::now();
    job.record.state = JobState::Aborted;
    job.record.system_modstamp = now;
    job.record.expires_at =
        Some(now + chrono::Duration::from_std(app.settings.retention).unwrap_or(chrono::Duration::MAX));
    job.results = None;
    job.rendered = None;
    let view = job.record.create_view();
    // Published before persisted (see `AppState::emit`).
    app.emit(job.record.event());
    app.persist_jobs(&jobs);
    drop(jobs);
    if let Some(persist) = &app.persist {
        let _ = persist.delete_results(&job_id);
    }
    Ok(Json(view))
}

pub async fn delete(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path((version, job_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    version::parse(&version)?;
    let mut jobs = lock(&app.jobs);
    let job = jobs.get(&job_id).ok_or_else(ApiError::not_found)?;
    if !job.record.state.is_terminal() {
        return Err(ApiError::bad_request(
            "API_ERROR",
            "Error encountered when deleting the job because the job is not terminated",
        ));
    }
    jobs.remove(&job_id);
    app.persist_jobs(&jobs);
    drop(jobs);
    if let Some(persist) = &app.persist
        && let Err(e) = persist.delete_results(&job_id)
    {
        tracing::warn!(job = %job_id, error = %e, "could not delete persisted results");
    }
    Ok(StatusCode::NO_CONTENT)
}
