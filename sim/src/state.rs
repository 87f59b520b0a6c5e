//! The state every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
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

/// What the Pub/Sub server does with a job event: given the org, as the org holds it.
pub type Publisher = Box<dyn Fn(&AppState, &JobEvent) + Send + Sync>;

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
    /// Appends each job event to the Pub/Sub replay log, in the caller's thread, before `emit`
    /// returns: set once by the Pub/Sub server. Synchronous so that a caller which emits before
    /// persisting the change it announces knows the event is in the log (see `emit`).
    pub publisher: OnceLock<Publisher>,
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

    /// Publishes a job's state change: on the replay log at once (when the Pub/Sub server runs)
    /// and to in-process listeners. A transition calls this before persisting itself, so a
    /// restarted org can replay a transition whose event it published (a duplicate event, which
    /// Salesforce's at-least-once delivery allows) but never holds one whose event it lost.
    pub fn emit(&self, event: JobEvent) {
        if let Some(publish) = self.publisher.get() {
            publish(self, &event);
        }
        // No receiver is not an error: nobody is listening yet.
        let _ = self.events.send(event);
    }
}
