//! What every Salesforce-facing request passes through before its handler: counting, then the
//! request-level faults (latency, 5xx, 403), and after it the non-JSON-body fault.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api_error::{ApiError, html_error_page};
use crate::faults::Reject;
use crate::state::AppState;
use crate::stats::endpoint;

/// The daily API request allocation shown in `Sforce-Limit-Info`, as for a typical org.
const DAILY_API_LIMIT: u64 = 15_000;

/// Names a request by endpoint, the names used in stats and in `FaultConfig::endpoints`.
pub fn classify(method: &Method, path: &str) -> &'static str {
    if path == "/services/oauth2/token" {
        return endpoint::TOKEN;
    }
    let Some(rest) = path.strip_prefix("/services/data/") else {
        return endpoint::OTHER;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match (segments.as_slice(), method) {
        ([_, "jobs", "query"], &Method::POST) => endpoint::JOB_CREATE,
        ([_, "jobs", "query"], &Method::GET) => endpoint::JOB_LIST,
        ([_, "jobs", "query", _], &Method::GET) => endpoint::JOB_GET,
        ([_, "jobs", "query", _], &Method::PATCH) => endpoint::JOB_ABORT,
        ([_, "jobs", "query", _], &Method::DELETE) => endpoint::JOB_DELETE,
        ([_, "jobs", "query", _, "results"], &Method::GET) => endpoint::JOB_RESULTS,
        _ => endpoint::OTHER,
    }
}

pub async fn gate(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let name = classify(request.method(), request.uri().path());
    let is_rest = request.uri().path().starts_with("/services/data");
    let total = app.stats.request(name);
    let faults = app.faults.on_request(name);
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let mut response = match faults.reject {
        Some(Reject::ServerError(status)) => {
            app.stats.fault("error_5xx");
            tracing::info!(endpoint = name, status, "injected server error");
            ApiError::server_error(status).into_response()
        }
        Some(Reject::RequestLimit) => {
            app.stats.fault("request_limit");
            tracing::info!(endpoint = name, "injected REQUEST_LIMIT_EXCEEDED");
            ApiError::request_limit().into_response()
        }
        None => {
            let answer = next.run(request).await;
            match faults.lose_answer {
                Some(status) => {
                    app.stats.fault("lose_answers");
                    tracing::info!(endpoint = name, status, answered = %answer.status(), "injected a lost answer");
                    ApiError::server_error(status).into_response()
                }
                None => answer,
            }
        }
    };
    let status = response.status();
    if (status.is_client_error() || status.is_server_error()) && app.faults.non_json_errors() {
        app.stats.fault("non_json_errors");
        let mut html = Response::new(Body::from(html_error_page(status)));
        *html.status_mut() = status;
        html.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
        response = html;
    }
    let huge = app.faults.huge_error_body_bytes();
    if (status.is_client_error() || status.is_server_error()) && huge > 0 {
        app.stats.fault("huge_error_body");
        response = huge_body(&app, status, huge);
    }
    if is_rest {
        let usage = format!("api-usage={total}/{DAILY_API_LIMIT}");
        if let Ok(value) = HeaderValue::from_str(&usage) {
            response.headers_mut().insert("Sforce-Limit-Info", value);
        }
    }
    response
}

/// An error answer whose body is `bytes` long, made as it is read, one 64 KiB chunk at a time.
fn huge_body(app: &Arc<AppState>, status: axum::http::StatusCode, bytes: u64) -> Response {
    const CHUNK: u64 = 64 * 1024;
    let app = app.clone();
    let chunks = futures_util::stream::unfold(0u64, move |sent| {
        let app = app.clone();
        async move {
            (sent < bytes).then(|| {
                app.stats.fault("error_body_chunk");
                let n = CHUNK.min(bytes - sent);
                let chunk = bytes::Bytes::from(vec![b' '; usize::try_from(n).unwrap_or(0)]);
                (Ok::<_, std::io::Error>(chunk), sent + n)
            })
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_bulk_endpoint() {
        let p = "/services/data/v63.0/jobs/query";
        assert_eq!(classify(&Method::POST, p), endpoint::JOB_CREATE);
        assert_eq!(classify(&Method::GET, p), endpoint::JOB_LIST);
        assert_eq!(classify(&Method::GET, &format!("{p}/750x")), endpoint::JOB_GET);
        assert_eq!(classify(&Method::PATCH, &format!("{p}/750x")), endpoint::JOB_ABORT);
        assert_eq!(classify(&Method::DELETE, &format!("{p}/750x")), endpoint::JOB_DELETE);
        assert_eq!(classify(&Method::GET, &format!("{p}/750x/results")), endpoint::JOB_RESULTS);
        assert_eq!(classify(&Method::POST, "/services/oauth2/token"), endpoint::TOKEN);
        assert_eq!(classify(&Method::GET, "/services/data/v63.0/sobjects"), endpoint::OTHER);
    }
}
