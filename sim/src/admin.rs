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
use serde_json::json;

use crate::faults::FaultConfig;
use crate::state::AppState;
use crate::stats::StatsSnapshot;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/__sim/stats", get(stats))
        .route("/__sim/stats/reset", post(reset_stats))
        .route("/__sim/faults", get(get_faults).post(set_faults))
        .route("/__sim/changes", post(apply_changes))
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
}

/// Applies changes now, as the `--change-rate` ticker would (persisted the same way), so a test
/// knows exactly when the org changed.
async fn apply_changes(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let changes: Changes = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
    };
    let change = crate::store::persist::ChangeRecord {
        modifications: changes.modifications,
        inserts: changes.inserts,
        at: chrono::Utc::now(),
    };
    let applied = tokio::task::spawn_blocking(move || {
        app.data.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply_changes(
            change.modifications,
            change.inserts,
            change.at,
        );
        match &app.persist {
            Some(persist) => persist.append_change(&change).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    })
    .await;
    match applied {
        Ok(Ok(())) => Json(json!({"applied_at": change.at.to_rfc3339()})).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e}))).into_response(),
        Err(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "applying changes panicked"}))).into_response()
        }
    }
}

/// Runs a SOQL query against the org directly (no job, no token): what the org holds, for tests
/// to compare an export with. The body is the SOQL; the answer a JSON array of rows.
async fn query(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let soql = String::from_utf8_lossy(&body).into_owned();
    let data = app.data.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    match crate::soql::parse(&soql).and_then(|q| crate::soql::execute(&q, &data)) {
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
