//! The slice of the Tooling API a Pub/Sub client's admin uses: creating a
//! `ManagedEventSubscription` (developer name, topic, default replay, state), which
//! `ManagedSubscribe` streams then name.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use crate::api_error::ApiError;
use crate::bulk::version;
use crate::oauth::session::Session;
use crate::pubsub::avro;
use crate::pubsub::managed::{CreateError, DefaultReplay};
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/services/data/{version}/tooling/sobjects/ManagedEventSubscription", post(create))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    full_name: String,
    metadata: Metadata,
}

/// The fields the simulator acts on; the others Salesforce takes (`label`,
/// `errorRecoveryReplay`) are accepted and ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    topic_name: String,
    default_replay: DefaultReplay,
    state: SubscriptionState,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
enum SubscriptionState {
    Run,
    Stop,
}

async fn create(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path(version): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    version::parse(&version)?;
    let request: CreateRequest = serde_json::from_slice(&body).map_err(|e| ApiError::json_parse(e.to_string()))?;
    if request.metadata.topic_name != avro::TOPIC {
        return Err(ApiError::bad_request(
            "FIELD_INTEGRITY_EXCEPTION",
            format!("topicName: no topic `{}` can be subscribed to", request.metadata.topic_name),
        ));
    }
    let id = app
        .managed
        .create(
            &request.full_name,
            &request.metadata.topic_name,
            request.metadata.default_replay,
            request.metadata.state == SubscriptionState::Run,
        )
        .map_err(|CreateError::Duplicate| {
            ApiError::bad_request(
                "DUPLICATE_DEVELOPER_NAME",
                format!("There's already a ManagedEventSubscription named {}.", request.full_name),
            )
        })?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "success": true, "errors": [], "warnings": [], "infos": []})))
        .into_response())
}
