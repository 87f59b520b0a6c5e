//! The REST side anyone can read the tables with: `tables.get` and `tabledata.list` of BigQuery's
//! v2 API (`GET /bigquery/v2/projects/P/datasets/D/tables/T[/data]`).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::Tables;

pub fn router(tables: Arc<Tables>) -> Router {
    Router::new()
        .route("/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}", get(tables_get))
        .route("/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}/data", get(tabledata_list))
        .with_state(tables)
}

fn not_found(id: &str) -> Response {
    let message = format!("Not found: Table {}", id.replacen('.', ":", 1));
    let body = json!({"error": {"code": 404, "message": message, "status": "NOT_FOUND",
        "errors": [{"message": message, "domain": "global", "reason": "notFound"}]}});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn tables_get(State(tables): State<Arc<Tables>>, Path((p, d, t)): Path<(String, String, String)>) -> Response {
    let id = format!("{p}.{d}.{t}");
    match tables.tables.lock().expect("tables lock").get(&id) {
        Some(table) => Json(table.resource()).into_response(),
        None => not_found(&id),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    max_results: Option<usize>,
    page_token: Option<String>,
    start_index: Option<String>,
}

async fn tabledata_list(
    State(tables): State<Arc<Tables>>,
    Path((p, d, t)): Path<(String, String, String)>,
    Query(params): Query<ListParams>,
) -> Response {
    let id = format!("{p}.{d}.{t}");
    let guard = tables.tables.lock().expect("tables lock");
    let Some(table) = guard.get(&id) else { return not_found(&id) };
    let start = match params.page_token.or(params.start_index).map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            let body = json!({"error": {"code": 400, "message": "Invalid page token or start index", "status": "INVALID_ARGUMENT"}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let max = params.max_results.unwrap_or(100_000).max(1);
    let end = (start + max).min(table.rows.len());
    let rows: Vec<_> = table.rows[start.min(end)..end]
        .iter()
        .map(|cells| json!({"f": cells.iter().map(|v| json!({"v": v})).collect::<Vec<_>>()}))
        .collect();
    let mut body = json!({"kind": "bigquery#tableDataList", "totalRows": table.rows.len().to_string(), "rows": rows});
    if end < table.rows.len() {
        body["pageToken"] = json!(end.to_string());
    }
    Json(body).into_response()
}
