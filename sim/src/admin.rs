//! `/__sim/...`: the test-facing admin endpoint. Not part of Salesforce, so it takes no token and is
//! neither counted nor faulted.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::state::AppState;
use crate::stats::StatsSnapshot;
use crate::store::persist::ChangeRecord;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/__sim/stats", get(stats))
        .route("/__sim/stats/reset", post(reset_stats))
        .route("/__sim/faults", get(get_faults).post(set_faults))
        .route("/__sim/changes", post(apply_changes))
        .route("/__sim/delete", post(delete))
        .route("/__sim/purge", post(purge))
        .route("/__sim/query", post(query))
        .route("/__sim/jobs", post(foreign_job))
}

/// `POST /__sim/jobs`: a query job created by another user of the org (another team's
/// integration querying the same object), answered with its job info.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ForeignJob {
    object: Option<String>,
    query: Option<String>,
    operation: Option<crate::bulk::job::Operation>,
    column_delimiter: Option<crate::csv_writer::ColumnDelimiter>,
    line_ending: Option<crate::csv_writer::LineEnding>,
    /// Defaults to the org's other user.
    created_by_id: Option<String>,
}

async fn foreign_job(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let bad = |e: String| (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
    let job: ForeignJob = match serde_json::from_slice(&body) {
        Ok(j) => j,
        Err(e) => return bad(e.to_string()),
    };
    let soql = match (job.query, &job.object) {
        (Some(q), _) => q,
        (None, Some(object)) => format!("SELECT Id FROM {object}"),
        (None, None) => return bad("give `query` or `object`".into()),
    };
    if let (Some(object), Ok(parsed)) = (&job.object, crate::soql::parse(&soql))
        && !parsed.object().eq_ignore_ascii_case(object)
    {
        return bad(format!("`object` is {object} but the query reads {}", parsed.object()));
    }
    let new = crate::bulk::handlers::NewJob {
        operation: job.operation.unwrap_or(crate::bulk::job::Operation::Query),
        soql,
        api_version: crate::bulk::version::DEFAULT.to_string(),
        column_delimiter: job.column_delimiter.unwrap_or_default(),
        line_ending: job.line_ending.unwrap_or_default(),
        created_by_id: job.created_by_id.unwrap_or_else(|| app.identity.other_user_id.clone()),
    };
    match crate::bulk::handlers::create_job(&app, new).await {
        Ok(view) => Json(view).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Changes {
    #[serde(default)]
    modifications: usize,
    #[serde(default)]
    inserts: usize,
    #[serde(default)]
    deletes: usize,
}

fn bad_request(e: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response()
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// Applies `change` as the ticker would (persisted the same way) and answers `answer(deleted ids)`.
async fn apply(app: Arc<AppState>, change: ChangeRecord, answer: impl FnOnce(Vec<String>) -> Value) -> Response {
    match crate::changes::apply_async(app, change).await {
        Ok(deleted) => Json(answer(deleted)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e}))).into_response(),
    }
}

/// Applies changes now, as the `--change-rate` ticker would, so a test knows exactly when the org
/// changed.
async fn apply_changes(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let changes: Changes = match parse(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    let at = chrono::Utc::now();
    let change = ChangeRecord {
        modifications: changes.modifications,
        inserts: changes.inserts,
        deletes: changes.deletes,
        at,
        ..Default::default()
    };
    apply(app, change, |deleted| json!({"applied_at": at.to_rfc3339(), "deleted": deleted})).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Delete {
    object: String,
    count: usize,
}

/// `POST /__sim/delete` `{"object": "Account", "count": N}`: moves N random live records of the
/// object to the Recycle Bin now; answers `{"ids": [...]}` (fewer if fewer were live).
async fn delete(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let (request, object) = match parse::<Delete>(&body).and_then(|r| known_object(&app, &r.object).map(|o| (r, o))) {
        Ok(found) => found,
        Err(e) => return bad_request(e),
    };
    let change = ChangeRecord {
        deletes: request.count,
        delete_object: Some(object),
        at: chrono::Utc::now(),
        ..Default::default()
    };
    apply(app, change, |ids| json!({"ids": ids})).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Purge {
    object: String,
}

/// `POST /__sim/purge` `{"object": "Account"}`: empties the object's Recycle Bin (a hard
/// delete): its records leave `queryAll`; the `deleted` resource still reports them.
async fn purge(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let (request, object) = match parse::<Purge>(&body).and_then(|r| known_object(&app, &r.object).map(|o| (r, o))) {
        Ok(found) => found,
        Err(e) => return bad_request(e),
    };
    let change = ChangeRecord { purge: Some(object), at: chrono::Utc::now(), ..Default::default() };
    apply(app, change, |_| json!({"purged": request.object})).await
}

/// The object's canonical name, or why it is refused.
fn known_object(app: &AppState, object: &str) -> Result<String, String> {
    let data = app.data.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    data.schema(object).map(|s| s.name.clone()).ok_or_else(|| format!("the simulator has no object `{object}`"))
}

/// Runs a SOQL query against the org directly (no job, no token): what the org holds, for tests
/// to compare an export with. The body is the SOQL; the answer a JSON array of rows. `?all=true`
/// reads as a `queryAll` job does (the Recycle Bin too).
async fn query(
    State(app): State<Arc<AppState>>,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let soql = String::from_utf8_lossy(&body).into_owned();
    let scope = match params.get("all").map(String::as_str) {
        Some("true") => crate::soql::Scope::WithRecycled,
        _ => crate::soql::Scope::Live,
    };
    let data = app.data.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    match crate::soql::parse(&soql).and_then(|q| crate::soql::execute_in(&q, &data, scope)) {
        Ok(rows) => Json((0..rows.len()).map(|i| rows.row(i)).collect::<Vec<_>>()).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

pub fn snapshot(app: &AppState) -> StatsSnapshot {
    let mut snapshot = app.stats.snapshot();
    let data = app.data.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    snapshot.records = data.objects().iter().map(|o| (o.name.clone(), data.record_count(&o.name))).collect();
    snapshot
}

async fn stats(State(app): State<Arc<AppState>>) -> Json<StatsSnapshot> {
    Json(snapshot(&app))
}

async fn reset_stats(State(app): State<Arc<AppState>>) -> StatusCode {
    app.stats.reset();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(app): State<Arc<AppState>>) -> Json<FaultConfig> {
    Json(app.faults.get())
}

async fn set_faults(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(config) => {
            tracing::info!(?config, "faults set");
            app.faults.set(config);
            Json(app.faults.get()).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
    }
}
