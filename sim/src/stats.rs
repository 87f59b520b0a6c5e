//! Counters that let a test assert exactly what a client did: requests per endpoint, jobs per
//! object, pages per job and fetches per locator.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Endpoint names, as they appear in `requests` and in `FaultConfig::endpoints`.
pub mod endpoint {
    pub const TOKEN: &str = "oauth_token";
    pub const JOB_CREATE: &str = "job_create";
    pub const JOB_LIST: &str = "job_list";
    pub const JOB_GET: &str = "job_get";
    pub const JOB_ABORT: &str = "job_abort";
    pub const JOB_DELETE: &str = "job_delete";
    pub const JOB_RESULTS: &str = "job_results";
    pub const OTHER: &str = "other";
}

/// The key under which a results request without `locator` (the first page) is counted.
pub const FIRST_PAGE: &str = "(first)";

/// `GET /__sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Current record count per object.
    pub records: BTreeMap<String, usize>,
    /// Jobs created per object.
    pub jobs_created: BTreeMap<String, u64>,
    /// Requests per endpoint, faulted ones included.
    pub requests: BTreeMap<String, u64>,
    /// Results pages whose body started streaming, per job.
    pub pages_served: BTreeMap<String, u64>,
    /// Results requests per job, then per `locator` (`(first)` for none).
    pub requests_per_locator: BTreeMap<String, BTreeMap<String, u64>>,
    /// Faults that fired, per kind.
    pub faults_injected: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct Stats {
    inner: Mutex<StatsSnapshot>,
}

impl Stats {
    fn with<T>(&self, f: impl FnOnce(&mut StatsSnapshot) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn request(&self, endpoint: &str) -> u64 {
        self.with(|s| {
            *s.requests.entry(endpoint.to_string()).or_default() += 1;
            s.requests.values().sum()
        })
    }

    pub fn job_created(&self, object: &str) {
        self.with(|s| *s.jobs_created.entry(object.to_string()).or_default() += 1);
    }

    pub fn results_request(&self, job_id: &str, locator: Option<&str>) {
        self.with(|s| {
            *s.requests_per_locator
                .entry(job_id.to_string())
                .or_default()
                .entry(locator.unwrap_or(FIRST_PAGE).to_string())
                .or_default() += 1;
        });
    }

    pub fn page_served(&self, job_id: &str) {
        self.with(|s| *s.pages_served.entry(job_id.to_string()).or_default() += 1);
    }

    pub fn fault(&self, kind: &str) {
        self.with(|s| *s.faults_injected.entry(kind.to_string()).or_default() += 1);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        self.with(|s| s.clone())
    }

    pub fn reset(&self) {
        self.with(|s| *s = StatsSnapshot::default());
    }
}
