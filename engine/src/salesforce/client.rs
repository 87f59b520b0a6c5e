//! One client per credentials file, shared by every task that names it: one login, one
//! connection pool. Calls retry with backoff and jitter on 5xx and network errors, and log in again
//! once on 401 `INVALID_SESSION_ID`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::auth::{Session, login};
use super::credentials::SalesforceCredentials;
use super::error::SalesforceError;
use crate::credentials::CredentialsRoot;

/// Retries for one call (a page fetch, a job create).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, initial: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// Exponential backoff with up to 25% jitter, so clients that failed together do not retry
    /// together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.initial.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(self.max);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }
}

pub struct SalesforceClient {
    http: reqwest::Client,
    creds: SalesforceCredentials,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    api_version: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceClient").field("credentials", &self.creds.file).finish_non_exhaustive()
    }
}

impl SalesforceClient {
    pub fn new(
        creds: SalesforceCredentials,
        default_api_version: &str,
        retry: RetryPolicy,
    ) -> Result<Self, SalesforceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .gzip(true)
            .user_agent(concat!("bulkflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SalesforceError::Config(format!("cannot build the HTTP client: {e}")))?;
        let api_version = creds.api_version.clone().unwrap_or_else(|| default_api_version.to_string());
        Ok(Self { http, creds, session: tokio::sync::Mutex::new(None), api_version, retry })
    }

    pub fn credentials(&self) -> &SalesforceCredentials {
        &self.creds
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The current session, logging in if there is none.
    pub async fn session(&self) -> Result<Arc<Session>, SalesforceError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let s = Arc::new(self.login_with_retry().await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    /// Log in again, unless another caller already replaced the stale session.
    pub async fn refresh(&self, stale: &Arc<Session>) -> Result<Arc<Session>, SalesforceError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref()
            && !Arc::ptr_eq(s, stale)
        {
            return Ok(s.clone());
        }
        tracing::info!(credentials = %self.creds.file.display(), "Salesforce session expired; logging in again");
        let s = Arc::new(self.login_with_retry().await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn login_with_retry(&self) -> Result<Session, SalesforceError> {
        let mut attempt = 1;
        loop {
            match login(&self.http, &self.creds).await {
                Err(e) if e.is_retryable() && attempt < self.retry.attempts => {
                    tracing::warn!(error = %e, attempt, "Salesforce login failed; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `{instance}/services/data/vXX.X` for `version`.
    pub fn data_url(session: &Session, version: &str) -> String {
        format!("{}/services/data/v{version}", session.instance_url)
    }

    /// Send a request built by `build` (called again for each attempt), returning a 2xx response.
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client, &Session) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SalesforceError> {
        self.send_attempts(what, self.retry.attempts, build).await
    }

    /// One attempt (and one more after a new login on 401): for requests that must not be sent
    /// blindly again, such as a job create, whose lost answer may hide a job made.
    pub async fn send_once(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client, &Session) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SalesforceError> {
        self.send_attempts(what, 1, build).await
    }

    async fn send_attempts(
        &self,
        what: &str,
        attempts: u32,
        build: impl Fn(&reqwest::Client, &Session) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SalesforceError> {
        let mut session = self.session().await?;
        let mut refreshed = false;
        let mut attempt = 1;
        loop {
            let result = build(&self.http, &session).bearer_auth(session.access_token.expose()).send().await;
            let error = match result {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body = error_body(r).await;
                    if status == 401 && body.contains("INVALID_SESSION_ID") && !refreshed {
                        refreshed = true;
                        session = self.refresh(&session).await?;
                        continue;
                    }
                    SalesforceError::from_response(what, status, &body)
                }
                Err(e) => SalesforceError::Transport { what: what.to_string(), reason: e.without_url().to_string() },
            };
            if error.is_retryable() && attempt < attempts {
                let wait = self.retry.backoff(attempt);
                tracing::warn!(what, attempt, error = %error, wait = ?wait, "Salesforce call failed; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(error);
        }
    }
}

/// Bytes of an error answer read at most: Salesforce's errors are a few hundred bytes, and a
/// proxy's page a few KiB; the rest of a longer body is not read (the connection is dropped).
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// An error answer's body, at most [`MAX_ERROR_BODY`] bytes of it, as text.
async fn error_body(r: reqwest::Response) -> String {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    let mut stream = r.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The shared clients, keyed by the credentials file they were made from.
pub struct Clients {
    root: CredentialsRoot,
    default_api_version: String,
    retry: RetryPolicy,
    clients: Mutex<HashMap<PathBuf, Arc<SalesforceClient>>>,
}

impl Clients {
    pub fn new(root: CredentialsRoot, default_api_version: &str, retry: RetryPolicy) -> Self {
        Self { root, default_api_version: default_api_version.to_string(), retry, clients: Mutex::default() }
    }

    pub fn get(&self, credentials_path: &Path) -> Result<Arc<SalesforceClient>, SalesforceError> {
        let file = self.root.resolve(credentials_path);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&file) {
            return Ok(c.clone());
        }
        let creds = SalesforceCredentials::load(credentials_path, &self.root)
            .map_err(|e| SalesforceError::Config(e.to_string()))?;
        let client = Arc::new(SalesforceClient::new(creds, &self.default_api_version, self.retry)?);
        clients.insert(file, client.clone());
        Ok(client)
    }
}
