//! Where rows that cannot be cast go when `rejects:` is set: one JSON Lines file per batch,
//! `<rejects>/<batch id>.jsonl`. A file per batch (named like the batch's data files) keeps a
//! redelivered batch from listing its bad rows twice, and each file is written to a temporary name
//! and renamed, so a reader never sees half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value, json};

use crate::file_name::file_stem;
use crate::schema::cast::RowError;

#[derive(Debug, Clone)]
pub struct Rejects {
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write rejected rows to `{}`: {source}", path.display())]
pub struct RejectsError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl Rejects {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path_for(&self, batch_id: &str) -> PathBuf {
        self.dir.join(format!("{}.jsonl", file_stem(batch_id)))
    }

    /// Writes one line per bad row: the batch id, the row, its `Id`, every error on the row and the
    /// whole record as it arrived (text), so the row can be fixed and replayed.
    pub fn write(&self, batch_id: &str, input: &RecordBatch, errors: &[RowError]) -> Result<PathBuf, RejectsError> {
        let path = self.path_for(batch_id);
        let err = |source| RejectsError { path: path.clone(), source };
        let mut out = Vec::new();
        for row_errors in errors.chunk_by(|a, b| a.row == b.row) {
            let first = &row_errors[0];
            let line = json!({
                "batch_id": batch_id,
                "row": first.row,
                "Id": first.id,
                "errors": row_errors.iter().map(|e| json!({
                    "column": e.column,
                    "value": e.value,
                    "type": e.ty.to_string(),
                    "message": e.to_string(),
                })).collect::<Vec<_>>(),
                "record": record(input, first.row),
            });
            serde_json::to_writer(&mut out, &line).map_err(|e| err(e.into()))?;
            out.push(b'\n');
        }
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(err)?;
        tmp.write_all(&out).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        Ok(path)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The input row as `{column: text}`; non-text columns (there should be none) are left out.
fn record(input: &RecordBatch, row: usize) -> Value {
    let mut map = Map::new();
    for (field, column) in input.schema().fields().iter().zip(input.columns()) {
        let value = column
            .as_string_opt::<i32>()
            .map(|s| if s.is_null(row) { Value::Null } else { Value::String(s.value(row).to_string()) });
        if let Some(v) = value {
            map.insert(field.name().clone(), v);
        }
    }
    Value::Object(map)
}
