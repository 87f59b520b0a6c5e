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
