//! `POST /services/oauth2/token`: username-password, client credentials and JWT bearer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use serde_json::json;

use super::error::OAuthError;
use sha2::Sha256;

use crate::state::{AppState, lock};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Audiences a JWT may name besides the simulator's own URL: the real login hosts, because clients
/// configured for production or a sandbox send those unchanged.
const REAL_AUDIENCES: [&str; 2] = ["https://login.salesforce.com", "https://test.salesforce.com"];

/// Form fields, from the body or (as some samples send them) the query string.
fn params(uri: &Uri, body: &[u8]) -> HashMap<String, String> {
    let mut params: HashMap<String, String> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
        params.extend(pairs);
    }
    params
}

/// Client id and secret from HTTP Basic auth, which client-credentials clients may use instead of
/// form fields.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

pub async fn token(State(app): State<Arc<AppState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut p = params(&uri, &body);
    if let Some((id, secret)) = basic_auth(&headers) {
        p.entry("client_id".into()).or_insert(id);
        p.entry("client_secret".into()).or_insert(secret);
    }
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    let outcome = match get("grant_type") {
        "password" => check_client(&app, get("client_id"), get("client_secret"))
            .and_then(|()| check_user(&app, get("username"), get("password")))
            .map(|()| false),
        "client_credentials" => check_client(&app, get("client_id"), get("client_secret")).map(|()| true),
        JWT_BEARER => check_jwt(&app, get("assertion")).map(|()| true),
        _ => Err(OAuthError::new("unsupported_grant_type", "grant type not supported")),
    };
    match outcome {
        Ok(with_scope) => issue(&app, with_scope).into_response(),
        Err(e) => {
            tracing::info!(error = e.error, description = e.description, "token request refused");
            e.into_response()
        }
    }
}

fn check_client(app: &AppState, client_id: &str, client_secret: &str) -> Result<(), OAuthError> {
    if client_id != app.identity.client_id {
        return Err(OAuthError::new("invalid_client_id", "client identifier invalid"));
    }
    if client_secret != app.identity.client_secret {
        return Err(OAuthError::new("invalid_client", "invalid client credentials"));
    }
    Ok(())
}

fn check_user(app: &AppState, username: &str, password: &str) -> Result<(), OAuthError> {
    if username.eq_ignore_ascii_case(&app.identity.username) && password == app.identity.password {
        Ok(())
    } else {
        Err(OAuthError::new("invalid_grant", "authentication failure"))
    }
}

fn check_jwt(app: &AppState, assertion: &str) -> Result<(), OAuthError> {
    let claims = super::jwt::verify(assertion, &app.public_key)?;
    if claims.iss != app.identity.client_id {
        return Err(OAuthError::new("invalid_client_id", "client identifier invalid"));
    }
    let own = app.base_url.trim_end_matches('/');
    let aud_ok = claims.aud.iter().any(|a| {
        let a = a.trim_end_matches('/');
        a == own || REAL_AUDIENCES.contains(&a)
    });
    if !aud_ok {
        return Err(OAuthError::new("invalid_grant", "audience is invalid"));
    }
    if claims.exp <= Utc::now().timestamp() {
        return Err(OAuthError::new("invalid_grant", "expired authorization code"));
    }
    if !claims.sub.eq_ignore_ascii_case(&app.identity.username) {
        return Err(OAuthError::new("invalid_grant", "user hasn't approved this consumer"));
    }
    Ok(())
}

/// A token shaped like the real ones: the 15-character org id, `!`, then an opaque tail.
fn new_token(org_id: &str) -> String {
    const TAIL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut rng = rand::thread_rng();
    let tail: String = (0..94).map(|_| TAIL[rng.gen_range(0..TAIL.len())] as char).collect();
    format!("{}!AQ{tail}", &org_id[..15])
}

fn issue(app: &AppState, with_scope: bool) -> Json<serde_json::Value> {
    let now = Utc::now();
    let access_token = new_token(&app.identity.org_id);
    {
        let mut tokens = lock(&app.tokens);
        // Expired tokens can never work again; dropping them keeps a long-running org small.
        tokens.retain(|_, issued_at| app.faults.token_valid(*issued_at, now));
        tokens.insert(access_token.clone(), now);
        app.persist_tokens(&tokens);
    }
    let id = format!("{}/id/{}/{}", app.base_url, app.identity.org_id, app.identity.user_id);
    let issued_at = now.timestamp_millis().to_string();
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app.identity.client_secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let mut body = json!({
        "access_token": access_token,
        "instance_url": app.base_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
    });
    if with_scope {
        body["scope"] = json!("api");
    }
    Json(body)
}
