//! Bulk API 2.0 query jobs under `/services/data/vXX.X/jobs/query`.

pub mod handlers;
pub mod hostile;
pub mod job;
pub mod locator;
pub mod rendered;
pub mod results;
pub mod scheduler;
pub mod version;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/services/data/{version}/jobs/query", get(handlers::list).post(handlers::create))
        .route(
            "/services/data/{version}/jobs/query/{job_id}",
            get(handlers::get_job).patch(handlers::abort).delete(handlers::delete),
        )
        .route("/services/data/{version}/jobs/query/{job_id}/results", get(results::results))
}
