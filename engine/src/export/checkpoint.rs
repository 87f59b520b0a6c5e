//! What an export has done, kept beside its files (`_bulkflow_export.json` in `--out`) so a second
//! invocation resumes where the first stopped: the job, the locator of the page the next file
//! starts in, and how many rows of that page earlier files already hold.
//!
//! It moves only after a file is complete and durable, so the files it lists are never rewritten
//! and the one that was being written when the process died is written again from its first row,
//! under the same name. Kept as JSON, with a version, because it lives in the user's folder and is
//! worth reading there.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::ExportError;
use crate::file_format::FileFormat;
use crate::schema::TableSchema;

pub const FILE_NAME: &str = "_bulkflow_export.json";
pub const VERSION: u32 = 1;

/// What makes two invocations the same export: a checkpoint is resumed only by the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub soql: String,
    pub query_all: bool,
    pub format: FileFormat,
    pub max_rows_per_file: u64,
    pub schema: Option<TableSchema>,
}

/// Where the next file starts: page `page` (fetched with `locator`; `None` for the first page),
/// after its first `skip` rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub page: u64,
    pub locator: Option<String>,
    pub skip: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub version: u32,
    #[serde(flatten)]
    pub identity: Identity,
    /// When the job POST was made, recorded before it: a restart that finds no `job_id` looks for
    /// the job that POST may have made, instead of leaving it running as an orphan.
    pub posted_at: Option<DateTime<Utc>>,
    pub job_id: Option<String>,
    pub cursor: Cursor,
    /// Files complete: `part-00000` up to `part-{files - 1}`.
    pub files: u64,
    /// Rows in those files.
    pub rows: u64,
    pub done: bool,
}

impl Checkpoint {
    pub fn new(identity: Identity) -> Self {
        Self {
            version: VERSION,
            identity,
            posted_at: None,
            job_id: None,
            cursor: Cursor::default(),
            files: 0,
            rows: 0,
            done: false,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn from_json(location: &str, bytes: &[u8]) -> Result<Self, ExportError> {
        let bad = |reason: String| ExportError::output(format!("{location}/{FILE_NAME}"), reason);
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(VERSION)) {
            return Err(bad(format!(
                "written by another version of bulkflow (checkpoint version {version:?}, this one reads {VERSION}); use --force to start over"
            )));
        }
        serde_json::from_value(value).map_err(|e| bad(format!("not a bulkflow export checkpoint: {e}")))
    }

    /// The name of file number `n`.
    pub fn file_name(&self, n: u64) -> String {
        format!("part-{n:05}.{}", self.identity.format.extension())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_and_refuses_other_versions() {
        let identity = Identity {
            soql: "SELECT Id FROM Account".into(),
            query_all: false,
            format: FileFormat::Parquet,
            max_rows_per_file: 10,
            schema: None,
        };
        let mut cp = Checkpoint::new(identity);
        cp.cursor = Cursor { page: 2, locator: Some("MTAw".into()), skip: 5 };
        cp.files = 3;
        assert_eq!(Checkpoint::from_json("out", &cp.to_json()).unwrap(), cp);
        assert_eq!(cp.file_name(3), "part-00003.parquet");
        let old = String::from_utf8(cp.to_json()).unwrap().replace("\"version\": 1", "\"version\": 0");
        let e = Checkpoint::from_json("out", old.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("out/_bulkflow_export.json") && e.contains("--force"), "{e}");
    }
}
