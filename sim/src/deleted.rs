//! The REST "get deleted" resource, `GET /services/data/vXX.X/sobjects/{object}/deleted/`: the
//! only place a record purged from the Recycle Bin is still known, for 15 days.
//!
//! As Salesforce answers it: `start` and `end` are ISO 8601 and lose their seconds (minute
//! granularity); `start` must precede `end` by more than a minute; a `start` before
//! `earliestDateAvailable` (15 days back, or the simulator's `deleted_window`) is `INVALID_REPLICATION_DATE`, after which a caller
//! must reconcile by other means. Which error code the range check answers is [unverified]; the
//! simulator answers `INVALID_REPLICATION_DATE` for both.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use chrono::{DateTime, Duration, DurationRound, FixedOffset, Utc};
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::bulk::job::job_date;
use crate::bulk::version;
use crate::oauth::session::Session;
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/services/data/{version}/sobjects/{object}/deleted", get(deleted))
        .route("/services/data/{version}/sobjects/{object}/deleted/", get(deleted))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALID_REPLICATION_DATE", message)
}

/// ISO 8601 with an offset, as `2026-12-01T10:00:00Z`, `...+00:00` or `...+0000`.
fn parse_date(name: &str, text: Option<&String>) -> Result<DateTime<Utc>, ApiError> {
    let text = text.ok_or_else(|| {
        ApiError::bad_request("MISSING_ARGUMENT", format!("The '{name}' parameter is required (ISO 8601 date-time)"))
    })?;
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::<FixedOffset>::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request("INVALID_DATE_FORMAT", format!("{name}: `{text}` is not an ISO 8601 date-time"))
        })
}

fn to_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::minutes(1)).unwrap_or(at)
}

async fn deleted(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path((version, object)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    version::parse(&version)?;
    let start = parse_date("start", params.get("start"))?;
    let end = parse_date("end", params.get("end"))?;
    if end - start <= Duration::minutes(1) {
        return Err(invalid("The start date must chronologically precede the end date by more than one minute"));
    }
    let now = Utc::now();
    let window = Duration::from_std(app.settings.deleted_window).unwrap_or(Duration::days(15));
    let earliest = to_minute(now - window);
    let (start, end) = (to_minute(start), to_minute(end));
    if start < earliest {
        return Err(invalid(format!(
            "startDate {} is before the earliest date available, {}",
            job_date(start),
            job_date(earliest)
        )));
    }
    // Deletes up to this moment count; the answer names the minute it covers.
    let covered = end.min(now);
    let latest = to_minute(covered);
    let data = app.data.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(schema) = data.schema(&object) else { return Err(ApiError::not_found()) };
    let name = schema.name.clone();
    let records: Vec<Value> = data
        .deleted_between(&name, start.timestamp(), covered.timestamp() + 1)
        .into_iter()
        .map(|(id, at)| json!({"id": id, "deletedDate": job_date(DateTime::from_timestamp(at, 0).unwrap_or(now))}))
        .collect();
    Ok(Json(json!({
        "deletedRecords": records,
        "earliestDateAvailable": job_date(earliest),
        "latestDateCovered": job_date(latest),
    })))
}
