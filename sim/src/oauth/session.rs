//! The bearer-token check: an extractor, so a handler that takes [`Session`] cannot forget it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::Utc;

use crate::api_error::ApiError;
use crate::state::{AppState, lock};

/// Proof that the request carried a live access token.
pub struct Session;

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::invalid_session)?;
        // Salesforce takes the older `OAuth` scheme as well as `Bearer`.
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("OAuth "))
            .ok_or_else(ApiError::invalid_session)?
            .trim();
        let issued_at = lock(&app.tokens).get(token).copied().ok_or_else(ApiError::invalid_session)?;
        if app.faults.token_valid(issued_at, Utc::now()) { Ok(Session) } else { Err(ApiError::invalid_session()) }
    }
}
