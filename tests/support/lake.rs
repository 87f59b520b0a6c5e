//! What a lake of Parquet files holds, read with the parquet crate's own reader. Included with
//! `#[path = "support/lake.rs"] mod lake;`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The distinct `Id`s in the Parquet files anywhere under `dir`.
pub fn lake_ids(dir: &Path) -> BTreeSet<String> {
    lake_contents(dir).ids
}

/// What a lake holds: its distinct `Id`s, the rows of all its Parquet files, and every file that is
/// not a Parquet file (a staging file a crash left, say).
pub struct LakeContents {
    pub ids: BTreeSet<String>,
    /// The `Id`s with a row whose `IsDeleted` is true: a tombstone of a deleted record.
    pub deleted: BTreeSet<String>,
    pub rows: usize,
    pub other_files: Vec<PathBuf>,
}

pub fn lake_contents(dir: &Path) -> LakeContents {
    let mut lake = LakeContents { ids: BTreeSet::new(), deleted: BTreeSet::new(), rows: 0, other_files: Vec::new() };
    for p in files(dir) {
        if !is_parquet(&p) {
            lake.other_files.push(p);
            continue;
        }
        for (id, deleted) in parquet_rows(&p) {
            lake.rows += 1;
            if deleted {
                lake.deleted.insert(id.clone());
            }
            lake.ids.insert(id);
        }
    }
    lake
}

/// Every file anywhere under `dir`; none when `dir` does not exist (yet).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for p in entries.map(|e| e.unwrap().path()) {
            if p.is_dir() { dirs.push(p) } else { files.push(p) }
        }
    }
    files
}

pub fn is_parquet(file: &Path) -> bool {
    file.extension().is_some_and(|e| e == "parquet")
}

/// Each row of a Parquet file: its `Id`, and whether `IsDeleted` marks it a tombstone.
pub fn parquet_rows(file: &Path) -> Vec<(String, bool)> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap();
    let mut rows = Vec::new();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        let ids = batch.column_by_name("Id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let flags = batch.column_by_name("IsDeleted").and_then(|c| c.as_any().downcast_ref::<BooleanArray>());
        let deleted = |i: usize| flags.is_some_and(|f| f.is_valid(i) && f.value(i));
        rows.extend((0..ids.len()).map(|i| (ids.value(i).to_string(), deleted(i))));
    }
    rows
}
