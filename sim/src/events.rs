//! Job state changes: appended by the Pub/Sub server's publisher to its replay log as
//! `BulkApi2JobEvent`s, and broadcast for tests and in-process callers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The Bulk API 2.0 query-job states (`Open` belongs to ingest jobs only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobState {
    UploadComplete,
    InProgress,
    Aborted,
    JobComplete,
    Failed,
}

impl JobState {
    /// Terminal jobs can be deleted and no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Aborted | JobState::JobComplete | JobState::Failed)
    }
}

/// One state change of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEvent {
    pub job_id: String,
    pub object: String,
    /// The job's API version (`63.0`): result URLs must use it (the same-version rule).
    pub api_version: String,
    pub created_by_id: String,
    pub state: JobState,
    pub number_records_processed: u64,
    pub error_message: Option<String>,
    pub at: DateTime<Utc>,
}

/// Capacity of the broadcast channel: a lagging listener loses the oldest events, never blocks jobs.
pub const EVENT_CAPACITY: usize = 1024;
