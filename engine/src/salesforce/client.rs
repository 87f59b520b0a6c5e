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
use super::settings::{ClientSettings, Limits, RetryPolicy};
use crate::credentials::CredentialsRoot;

pub struct SalesforceClient {
    http: reqwest::Client,
    creds: SalesforceCredentials,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    api_version: String,
    settings: ClientSettings,
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
        settings: ClientSettings,
    ) -> Result<Self, SalesforceError> {
        // The whole-call deadline; results pages set their own, longer one.
        let http = settings
            .trust
            .reqwest(reqwest::Client::builder())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .timeout(settings.limits.request_timeout)
            .gzip(true)
            .user_agent(concat!("bulkflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SalesforceError::Config(format!("cannot build the HTTP client: {e}")))?;
        crate::tls::warn_if_plain("Salesforce login_url", &creds.login_url);
        if let Some(pubsub) = &creds.pubsub_url {
            crate::tls::warn_if_plain("Salesforce pubsub_url", pubsub);
        }
        let api_version = creds.api_version.clone().unwrap_or_else(|| default_api_version.to_string());
        Ok(Self { http, creds, session: tokio::sync::Mutex::new(None), api_version, settings })
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
        self.settings.retry
    }

    /// What this client's TLS trusts; the Pub/Sub channel to the same org trusts the same.
    pub fn trust(&self) -> &crate::tls::Trust {
        &self.settings.trust
    }

    pub fn limits(&self) -> &Limits {
        &self.settings.limits
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
                Err(e) if e.is_retryable() && attempt < self.settings.retry.attempts => {
                    tracing::warn!(error = %e, attempt, "Salesforce login failed; retrying");
                    tokio::time::sleep(self.settings.retry.backoff(attempt)).await;
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
        self.send_attempts(what, self.settings.retry.attempts, build).await
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
                    let body = error_body(r, self.settings.limits.max_error_body).await;
                    if status == 401 && body.contains("INVALID_SESSION_ID") && !refreshed {
                        refreshed = true;
                        session = self.refresh(&session).await?;
                        continue;
                    }
                    SalesforceError::from_response(what, status, &body)
                }
                Err(e) => SalesforceError::transport(what, e),
            };
            if error.is_retryable() && attempt < attempts {
                let wait = self.settings.retry.backoff(attempt);
                tracing::warn!(what, attempt, error = %error, wait = ?wait, "Salesforce call failed; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(error);
        }
    }
}

/// An error answer's body, at most `cap` bytes of it, as text: Salesforce's errors are a few
/// hundred bytes and a proxy's page a few KiB; the rest of a longer body is not read (the
/// connection is dropped).
async fn error_body(r: reqwest::Response, cap: u64) -> String {
    let body = match read_capped(r, cap).await {
        Ok(Capped::Whole(b) | Capped::Cut(b)) => b,
        Err(_) => Vec::new(),
    };
    String::from_utf8_lossy(&body).into_owned()
}

/// A body read up to a cap.
pub enum Capped {
    Whole(Vec<u8>),
    /// The first `cap` bytes of a longer body.
    Cut(Vec<u8>),
}

/// Reads `r`'s body, stopping at `cap` bytes; a `Content-Length` past the cap stops it before
/// any byte is read.
pub async fn read_capped(r: reqwest::Response, cap: u64) -> Result<Capped, reqwest::Error> {
    use futures_util::StreamExt;
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    if r.content_length().is_some_and(|n| n > cap as u64) {
        return Ok(Capped::Cut(Vec::new()));
    }
    let mut body = Vec::new();
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Cut(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(body))
}

/// The shared clients, keyed by the credentials file they were made from.
pub struct Clients {
    root: CredentialsRoot,
    default_api_version: String,
    settings: ClientSettings,
    clients: Mutex<HashMap<PathBuf, Arc<SalesforceClient>>>,
}

impl Clients {
    pub fn new(root: CredentialsRoot, default_api_version: &str, settings: ClientSettings) -> Self {
        Self { root, default_api_version: default_api_version.to_string(), settings, clients: Mutex::default() }
    }

    pub fn get(&self, credentials_path: &Path) -> Result<Arc<SalesforceClient>, SalesforceError> {
        let file = self.root.resolve(credentials_path);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&file) {
            return Ok(c.clone());
        }
        let creds = SalesforceCredentials::load(credentials_path, &self.root)
            .map_err(|e| SalesforceError::Config(e.to_string()))?;
        let client = Arc::new(SalesforceClient::new(creds, &self.default_api_version, self.settings.clone())?);
        clients.insert(file, client.clone());
        Ok(client)
    }
}
