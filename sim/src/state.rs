//! The state every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rsa::PublicKey;
use tokio::sync::broadcast;

use crate::bulk::job::Job;
use crate::data::Dataset;
use crate::events::JobEvent;
use crate::faults::Faults;
use crate::org::OrgIdentity;
use crate::stats::Stats;
use crate::store::persist::Persist;

pub struct Settings {
    pub job_latency: Duration,
    pub retention: Duration,
    /// How far back the `deleted` resource reports deletes (`earliestDateAvailable`).
    pub deleted_window: Duration,
    pub max_page_records: usize,
    pub list_page_size: usize,
}

pub struct AppState {
    pub settings: Settings,
    pub identity: OrgIdentity,
    pub public_key: PublicKey,
    /// `http://HOST:PORT`: both the login URL and the instance URL.
    pub base_url: String,
    pub data: Arc<RwLock<Dataset>>,
    pub jobs: Mutex<HashMap<String, Job>>,
    /// Access token → when it was issued.
    pub tokens: Mutex<HashMap<String, DateTime<Utc>>>,
    pub faults: Faults,
    pub stats: Stats,
    pub events: broadcast::Sender<JobEvent>,
    pub persist: Option<Persist>,
    /// The org's managed event subscriptions and their committed positions.
    pub managed: crate::pubsub::registry::Registry,
}

pub use crate::sync::lock;

impl AppState {
    /// Writes every job's metadata to the state dir, if there is one. Called with the jobs lock
    /// held, so the file always matches some moment of memory.
    pub fn persist_jobs(&self, jobs: &HashMap<String, Job>) {
        if let Some(persist) = &self.persist {
            let records: Vec<_> = jobs.values().map(|j| &j.record).collect();
            if let Err(e) = persist.save_jobs(&records) {
                tracing::warn!(error = %e, "could not persist jobs");
            }
        }
    }

    pub fn persist_tokens(&self, tokens: &HashMap<String, DateTime<Utc>>) {
        if let Some(persist) = &self.persist
            && let Err(e) = persist.save_tokens(tokens)
        {
            tracing::warn!(error = %e, "could not persist tokens");
        }
    }

    pub fn emit(&self, event: JobEvent) {
        // No receiver is not an error: nobody is listening yet.
        let _ = self.events.send(event);
    }
}
