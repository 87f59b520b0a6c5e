//! A query job: its metadata (persisted as is) and its JSON as the real API shows it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::csv_writer::{ColumnDelimiter, CsvFormat, LineEnding};
use crate::events::{JobEvent, JobState};
use crate::store::results::Results;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    Query,
    QueryAll,
}

/// Everything about a job except its rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub operation: Operation,
    pub object: String,
    pub created_by_id: String,
    pub created_date: DateTime<Utc>,
    pub system_modstamp: DateTime<Utc>,
    pub state: JobState,
    /// As in the creating request's path, e.g. `63.0`: the results must be asked for with it.
    pub api_version: String,
    pub column_delimiter: ColumnDelimiter,
    pub line_ending: LineEnding,
    /// Rows the query matched; shown once the job has run.
    pub row_count: u64,
    pub error_message: Option<String>,
    /// Set by the `fail_jobs` fault at creation: the job ends `Failed` with this `errorMessage`.
    pub planned_failure: Option<Option<String>>,
    pub in_progress_at: DateTime<Utc>,
    pub complete_at: DateTime<Utc>,
    /// When a terminal job (and its results) is removed.
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct Job {
    pub record: JobRecord,
    /// `None` after a restart until loaded, and for jobs whose results were never kept (aborted).
    pub results: Option<Arc<Results>>,
    /// The default pages, gzipped once (see [`super::rendered`]); `None` for reloaded jobs.
    pub rendered: Option<Arc<super::rendered::Rendered>>,
}

/// The job JSON's date format: an offset without a colon, and whole seconds (`.000`) as the real
/// API shows them.
pub fn job_date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S.000+0000").to_string()
}

impl JobRecord {
    pub fn format(&self) -> CsvFormat {
        CsvFormat { delimiter: self.column_delimiter, line_ending: self.line_ending }
    }

    fn api_version_number(&self) -> Value {
        self.api_version.parse::<f64>().map_or(Value::Null, |v| json!(v))
    }

    /// The fields every view shares, in the documented order.
    fn base(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("operation".into(), json!(self.operation));
        m.insert("object".into(), json!(self.object));
        m.insert("createdById".into(), json!(self.created_by_id));
        m.insert("createdDate".into(), json!(job_date(self.created_date)));
        m.insert("systemModstamp".into(), json!(job_date(self.system_modstamp)));
        m.insert("state".into(), json!(self.state));
        m.insert("concurrencyMode".into(), json!("Parallel"));
        m.insert("contentType".into(), json!("CSV"));
        m.insert("apiVersion".into(), self.api_version_number());
        m
    }

    /// The answer to create and abort.
    pub fn create_view(&self) -> Value {
        let mut m = self.base();
        m.insert("lineEnding".into(), json!(self.line_ending));
        m.insert("columnDelimiter".into(), json!(self.column_delimiter));
        Value::Object(m)
    }

    /// One entry of the list.
    pub fn list_view(&self) -> Value {
        let mut m = self.base();
        m.insert("jobType".into(), json!("V2Query"));
        m.insert("lineEnding".into(), json!(self.line_ending));
        m.insert("columnDelimiter".into(), json!(self.column_delimiter));
        Value::Object(m)
    }

    /// `GET .../jobs/query/{id}`.
    pub fn info_view(&self) -> Value {
        let mut m = self.base();
        m.insert("jobType".into(), json!("V2Query"));
        m.insert("lineEnding".into(), json!(self.line_ending));
        m.insert("columnDelimiter".into(), json!(self.column_delimiter));
        let processed = if self.state == JobState::JobComplete { self.row_count } else { 0 };
        m.insert("numberRecordsProcessed".into(), json!(processed));
        m.insert("retries".into(), json!(0));
        let processing_ms = if self.state.is_terminal() {
            (self.system_modstamp - self.created_date).num_milliseconds().max(0)
        } else {
            0
        };
        m.insert("totalProcessingTime".into(), json!(processing_ms));
        m.insert("isPkChunkingSupported".into(), json!(true));
        if let Some(message) = &self.error_message {
            m.insert("errorMessage".into(), json!(message));
        }
        Value::Object(m)
    }

    pub fn event(&self) -> JobEvent {
        JobEvent {
            job_id: self.id.clone(),
            object: self.object.clone(),
            api_version: self.api_version.clone(),
            created_by_id: self.created_by_id.clone(),
            state: self.state,
            number_records_processed: if self.state == JobState::JobComplete { self.row_count } else { 0 },
            error_message: self.error_message.clone(),
            at: self.system_modstamp,
        }
    }
}
