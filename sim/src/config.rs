//! How a simulator is set up: the org's data, its timings and its starting faults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::faults::FaultConfig;

/// Rows per results page when the client sends no `maxRecords`, and the most a page ever holds.
/// Salesforce caps pages by size, not by a documented count; 50,000 is what Meltano asks for, so a
/// client tuned against the real API sees pages of a familiar size.
pub const DEFAULT_MAX_PAGE_RECORDS: usize = 50_000;
/// Jobs per page of `GET /jobs/query`, as documented.
pub const DEFAULT_LIST_PAGE_SIZE: usize = 1_000;
/// How long terminal jobs and their results live, as on the real API.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_JOB_LATENCY: Duration = Duration::from_secs(1);
/// Salesforce's documented keepalive bound.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(270);
/// Salesforce closes a stream 60 s after its credit ran out with no new request.
pub const DEFAULT_IDLE_CLOSE: Duration = Duration::from_secs(60);
/// How far back Salesforce's `deleted` resource reports deletes.
pub const DEFAULT_DELETED_WINDOW: Duration = Duration::from_secs(15 * 24 * 3600);
/// The replay window of high-volume platform events.
pub const DEFAULT_REPLAY_RETENTION: Duration = Duration::from_secs(72 * 3600);
pub const DEFAULT_SPREAD: Duration = crate::data::DataSpec::DEFAULT_SPREAD;

/// A simulator's settings. Every field has a default ([`SimConfig::default`]); the builder methods
/// exist so callers name only what they change.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address for OAuth, Bulk API 2.0 and the admin endpoint; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Address for the Pub/Sub API (gRPC over plain HTTP/2); port 0 picks a free one.
    pub pubsub_listen: SocketAddr,
    /// With credit outstanding and no events, an empty `FetchResponse` goes out after this long.
    pub pubsub_keepalive: Duration,
    /// A stream whose credit ran out is closed after this long without a new `FetchRequest`.
    pub pubsub_idle_close: Duration,
    /// How long events stay replayable; older replay ids are `replayid.corrupted`.
    pub replay_retention: Duration,
    /// Publish a `RESULT`/`PARTIAL` event per full results page before the `FINAL` one.
    pub partial_result_events: bool,
    /// Records per object, e.g. `[("Account", 10_000)]`.
    pub records: Vec<(String, usize)>,
    pub seed: u64,
    /// The data's `LastModifiedDate`s lie in the `spread` before this. `None` means the moment the
    /// simulator starts; fix it for byte-identical results across runs.
    pub start: Option<DateTime<Utc>>,
    pub spread: Duration,
    /// Modifications and inserts per second (each), applied by a background ticker. 0: static data.
    pub change_rate: f64,
    /// Deletes per second (live records to the Recycle Bin), applied by the same ticker.
    pub delete_rate: f64,
    /// Time from job creation to `JobComplete`; the job is `InProgress` for the second half of it.
    pub job_latency: Duration,
    /// How long a terminal job and its results stay before the job is gone (404).
    pub retention: Duration,
    /// How far back the `deleted` resource reports deletes: Salesforce's 15 days; shorter, a test
    /// reaches past it without waiting (a `start` before it is `INVALID_REPLICATION_DATE`).
    pub deleted_window: Duration,
    pub max_page_records: usize,
    pub list_page_size: usize,
    /// Persist the org here so a restart is the same org. `None`: everything lives in memory.
    pub state_dir: Option<PathBuf>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PKCS#8 PEM of the JWT key pair. `None`: generated (or loaded from `state_dir`).
    pub jwt_private_key_pem: Option<String>,
    pub faults: FaultConfig,
    /// Address of the BigQuery fake (Storage Write gRPC and REST); port 0 picks a free one.
    pub bigquery_listen: SocketAddr,
    /// BigQuery tables created at start: `project.dataset.table` and its schema JSON.
    pub bigquery_tables: Vec<(String, String)>,
    /// Serve the REST API on `https://` and the Pub/Sub API over TLS with this certificate and
    /// key. `None`: plain HTTP and HTTP/2, as a local tool is served.
    pub tls: Option<crate::tls::TlsFiles>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pubsub_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pubsub_keepalive: DEFAULT_KEEPALIVE,
            pubsub_idle_close: DEFAULT_IDLE_CLOSE,
            replay_retention: DEFAULT_REPLAY_RETENTION,
            partial_result_events: false,
            records: vec![("Account".to_string(), 10_000)],
            seed: 1,
            start: None,
            spread: DEFAULT_SPREAD,
            change_rate: 0.0,
            delete_rate: 0.0,
            job_latency: DEFAULT_JOB_LATENCY,
            retention: DEFAULT_RETENTION,
            deleted_window: DEFAULT_DELETED_WINDOW,
            max_page_records: DEFAULT_MAX_PAGE_RECORDS,
            list_page_size: DEFAULT_LIST_PAGE_SIZE,
            state_dir: None,
            client_id: None,
            client_secret: None,
            username: None,
            password: None,
            jwt_private_key_pem: None,
            faults: FaultConfig::default(),
            bigquery_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bigquery_tables: Vec::new(),
            tls: None,
        }
    }
}

impl SimConfig {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
    pub fn bigquery_listen(mut self, addr: SocketAddr) -> Self {
        self.bigquery_listen = addr;
        self
    }
    /// A BigQuery table `project.dataset.table` to create at start from a schema JSON (text).
    pub fn bigquery_table(mut self, id: impl Into<String>, schema_json: impl Into<String>) -> Self {
        self.bigquery_tables.push((id.into(), schema_json.into()));
        self
    }
    /// Replaces the record counts, e.g. `.records([("Account", 1000), ("Contact", 500)])`.
    pub fn records<S: Into<String>>(mut self, records: impl IntoIterator<Item = (S, usize)>) -> Self {
        self.records = records.into_iter().map(|(o, n)| (o.into(), n)).collect();
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn start_time(mut self, start: DateTime<Utc>) -> Self {
        self.start = Some(start);
        self
    }
    pub fn spread(mut self, spread: Duration) -> Self {
        self.spread = spread;
        self
    }
    pub fn change_rate(mut self, per_second: f64) -> Self {
        self.change_rate = per_second;
        self
    }
    pub fn delete_rate(mut self, per_second: f64) -> Self {
        self.delete_rate = per_second;
        self
    }
    pub fn pubsub_keepalive(mut self, every: Duration) -> Self {
        self.pubsub_keepalive = every;
        self
    }
    pub fn pubsub_idle_close(mut self, after: Duration) -> Self {
        self.pubsub_idle_close = after;
        self
    }
    pub fn replay_retention(mut self, retention: Duration) -> Self {
        self.replay_retention = retention;
        self
    }
    pub fn partial_result_events(mut self, enabled: bool) -> Self {
        self.partial_result_events = enabled;
        self
    }
    pub fn job_latency(mut self, latency: Duration) -> Self {
        self.job_latency = latency;
        self
    }
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }
    pub fn deleted_window(mut self, window: Duration) -> Self {
        self.deleted_window = window;
        self
    }
    pub fn max_page_records(mut self, rows: usize) -> Self {
        self.max_page_records = rows.max(1);
        self
    }
    pub fn list_page_size(mut self, jobs: usize) -> Self {
        self.list_page_size = jobs.max(1);
        self
    }
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }
    /// Fixes the connected app's and the user's secrets instead of random ones.
    pub fn credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(client_secret.into());
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }
    /// Rounded up to whole seconds, so a short TTL never becomes "already expired".
    /// Serve HTTPS and the Pub/Sub API over TLS with this certificate and key (PEM files).
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(crate::tls::TlsFiles { cert: cert.into(), key: key.into() });
        self
    }

    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.faults.token_ttl_secs = ttl_secs(ttl);
        self
    }
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }
    /// Starts a simulator with these settings; see [`crate::Simulator::start`].
    pub async fn start(self) -> Result<crate::Simulator, crate::SimError> {
        crate::Simulator::start(self).await
    }
}

/// Whole seconds of a token lifetime, rounded up.
pub fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)
}
