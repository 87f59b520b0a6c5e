//! The org's managed subscriptions (created through the Tooling API) and their committed
//! positions, kept in the state directory when there is one. Apart from the streams that use
//! them (`managed`), so the app state can hold them without depending on the streams.

use std::collections::HashMap;
use std::sync::Mutex;

use bulkflow_pubsub_proto::{CommitReplayResponse, Error, ErrorCode};
use serde::{Deserialize, Serialize};

use super::log::{self, ReplayLog};
use crate::store::persist::Persist;
use crate::sync::lock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DefaultReplay {
    Latest,
    Earliest,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub developer_name: String,
    pub topic: String,
    pub default_replay: DefaultReplay,
    /// `RUN` or `STOP`, as the metadata says; a stopped subscription refuses streams.
    pub running: bool,
    /// The last replay id committed (its sequence), where the next stream starts after.
    pub committed: Option<u64>,
}

/// Every managed subscription of the org, kept in the state directory when there is one.
#[derive(Default)]
pub struct Registry {
    subscriptions: Mutex<HashMap<String, Subscription>>,
    persist: Option<Persist>,
}

/// Why a subscription cannot be created.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateError {
    Duplicate,
}

impl Registry {
    pub fn open(persist: Option<Persist>) -> std::io::Result<Self> {
        let stored: Vec<Subscription> =
            persist.as_ref().map(Persist::load_managed_subscriptions).transpose()?.unwrap_or_default();
        let subscriptions = stored.into_iter().map(|s| (s.id.clone(), s)).collect();
        Ok(Registry { subscriptions: Mutex::new(subscriptions), persist })
    }

    fn save(&self, subscriptions: &HashMap<String, Subscription>) {
        if let Some(persist) = &self.persist {
            let mut all: Vec<&Subscription> = subscriptions.values().collect();
            all.sort_by(|a, b| a.id.cmp(&b.id));
            if let Err(e) = persist.save_managed_subscriptions(&all) {
                tracing::warn!(error = %e, "could not persist managed subscriptions");
            }
        }
    }

    pub fn create(
        &self,
        developer_name: &str,
        topic: &str,
        default_replay: DefaultReplay,
        running: bool,
    ) -> Result<String, CreateError> {
        let mut subscriptions = lock(&self.subscriptions);
        if subscriptions.values().any(|s| s.developer_name.eq_ignore_ascii_case(developer_name)) {
            return Err(CreateError::Duplicate);
        }
        let id = crate::ids::new_id("18x");
        let subscription = Subscription {
            id: id.clone(),
            developer_name: developer_name.to_string(),
            topic: topic.to_string(),
            default_replay,
            running,
            committed: None,
        };
        subscriptions.insert(id.clone(), subscription);
        self.save(&subscriptions);
        Ok(id)
    }

    /// The subscription a request names by id or by developer name.
    pub fn find(&self, id: &str, developer_name: &str) -> Option<Subscription> {
        let subscriptions = lock(&self.subscriptions);
        if !id.is_empty() {
            return subscriptions.get(id).cloned();
        }
        subscriptions.values().find(|s| !developer_name.is_empty() && s.developer_name == developer_name).cloned()
    }

    /// Records a commit; the response tells the client whether it took.
    pub fn commit(&self, id: &str, request_id: &str, replay_id: &[u8], log: &ReplayLog) -> CommitReplayResponse {
        let mut response = CommitReplayResponse {
            commit_request_id: request_id.to_string(),
            replay_id: replay_id.to_vec(),
            error: None,
            process_time: chrono::Utc::now().timestamp_millis(),
        };
        let seq = log::decode(replay_id).filter(|seq| *seq <= log.latest());
        let mut subscriptions = lock(&self.subscriptions);
        match (seq, subscriptions.get_mut(id)) {
            (Some(seq), Some(subscription)) => {
                subscription.committed = Some(subscription.committed.map_or(seq, |c| c.max(seq)));
                self.save(&subscriptions);
            }
            (None, _) => {
                response.error =
                    Some(Error { code: ErrorCode::Commit as i32, msg: "the replay id is not valid".into() })
            }
            (_, None) => {
                response.error =
                    Some(Error { code: ErrorCode::Commit as i32, msg: "the managed subscription is gone".into() })
            }
        }
        response
    }
}
