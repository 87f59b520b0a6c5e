//! The token endpoint's errors, shared by the grant handlers and the JWT bearer check.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The token endpoint's error body: `{"error", "error_description"}`, unlike the REST array.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: &'static str,
}

impl OAuthError {
    pub fn new(error: &'static str, description: &'static str) -> Self {
        OAuthError { status: StatusCode::BAD_REQUEST, error, description }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.error, "error_description": self.description}))).into_response()
    }
}
