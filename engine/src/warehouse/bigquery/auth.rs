//! Service-account auth for Google APIs: the key file's `client_email` and `private_key` sign a JWT
//! (RS256) that the key's `token_uri` exchanges for an OAuth access token (RFC 7523), cached until
//! a minute before it expires. Written here rather than through a Google auth crate because it is
//! one POST, and `jsonwebtoken` already signs the Salesforce JWT bearer flow.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::tls::Trust;

/// The scope the Storage Write API asks for.
pub const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// A token is renewed this long before Google says it expires, so no call carries a stale one.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// The keys bulkflow reads from a service-account key file. Google's files carry more (`type`,
/// `project_id`, `client_id`, `auth_uri`, ...), so unknown keys are accepted, not refused.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey").field("client_email", &self.client_email).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The key file is unreadable or malformed: fixing the file is the only cure.
    #[error("{0}")]
    Credentials(#[from] crate::credentials::files::CredentialsError),
    #[error("service account key `{}`: `private_key` is not an RSA private key in PEM form", path.display())]
    Key { path: PathBuf },
    /// The token endpoint refused the assertion (a revoked key, a wrong clock): not retryable.
    #[error("token endpoint `{uri}` refused the service account `{email}`: HTTP {status}: {message}")]
    Refused { uri: String, email: String, status: u16, message: String },
    /// The token endpoint could not be reached or failed on its side: worth another attempt.
    #[error("token endpoint `{uri}`: {message}")]
    Unavailable { uri: String, message: String },
}

impl AuthError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

impl ServiceAccountKey {
    /// Reads and decodes the key file; errors name the file and where it is wrong, never a value.
    pub fn read(path: &Path) -> Result<Self, AuthError> {
        use crate::credentials::files as credentials;
        let text = credentials::read(path)?;
        Ok(credentials::decode(path, &text, "a GCP service account key (client_email, private_key, token_uri)")?)
    }

    fn token_uri(&self) -> &str {
        self.token_uri.as_deref().filter(|u| !u.is_empty()).unwrap_or(GOOGLE_TOKEN_URI)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

struct Cached {
    token: String,
    renew_at: Instant,
}

/// Access tokens for one service account, fetched on first use and renewed before they expire.
pub struct TokenSource {
    key: ServiceAccountKey,
    /// Where the key came from, for errors.
    path: PathBuf,
    scope: String,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    pub fn new(key: ServiceAccountKey, path: PathBuf, scope: &str, trust: &Trust) -> Result<Self, AuthError> {
        let http = trust.reqwest(reqwest::Client::builder()).timeout(Duration::from_secs(30)).build().map_err(|e| {
            AuthError::Unavailable { uri: key.token_uri().to_string(), message: format!("HTTP client setup: {e}") }
        })?;
        Ok(Self { key, path, scope: scope.to_string(), http, cached: Mutex::new(None) })
    }

    /// A valid access token, from the cache while it has more than a minute left.
    pub async fn token(&self) -> Result<String, AuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.exchange().await?;
        *cached =
            Some(Cached { token: token.clone(), renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE) });
        Ok(token)
    }

    /// Forgets the cached token (the API said it is no longer valid).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    fn assertion(&self) -> Result<String, AuthError> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            scope: &'a str,
            aud: &'a str,
            iat: u64,
            exp: u64,
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key.private_key.as_bytes())
            .map_err(|_| AuthError::Key { path: self.path.clone() })?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let claims = Claims {
            iss: &self.key.client_email,
            scope: &self.scope,
            aud: self.key.token_uri(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key.private_key_id.clone();
        jsonwebtoken::encode(&header, &claims, &key).map_err(|_| AuthError::Key { path: self.path.clone() })
    }

    /// One JWT bearer exchange: the token and how long it lives.
    async fn exchange(&self) -> Result<(String, Duration), AuthError> {
        let uri = self.key.token_uri().to_string();
        let assertion = self.assertion()?;
        let unavailable = |message: String| AuthError::Unavailable { uri: uri.clone(), message };
        let response = self
            .http
            .post(&uri)
            .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())])
            .send()
            .await
            .map_err(|e| unavailable(format!("cannot reach it: {e}")))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| unavailable(format!("reading the answer: {e}")))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let message = match serde_json::from_str::<TokenErrorBody>(&body) {
                Ok(b) => match b.error_description {
                    Some(d) => format!("{}: {d}", b.error),
                    None => b.error,
                },
                Err(_) => "the answer is not a JSON OAuth error".into(),
            };
            return Err(AuthError::Refused {
                uri,
                email: self.key.client_email.clone(),
                status: status.as_u16(),
                message,
            });
        }
        let token: TokenResponse =
            serde_json::from_str(&body).map_err(|_| unavailable("the answer has no `access_token`".into()))?;
        Ok((token.access_token, Duration::from_secs(token.expires_in.unwrap_or(3600))))
    }
}

#[cfg(test)]
mod tests;
