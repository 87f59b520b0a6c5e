//! What a lake of Parquet files holds, read with the parquet crate's own reader. Included with
//! `#[path = "support/lake.rs"] mod lake;`.

use std::collections::BTreeSet;
use std::path::Path;

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
    pub other_files: Vec<std::path::PathBuf>,
}

pub fn lake_contents(dir: &Path) -> LakeContents {
    let mut lake = LakeContents { ids: BTreeSet::new(), deleted: BTreeSet::new(), rows: 0, other_files: Vec::new() };
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                let file = std::fs::File::open(&p).unwrap();
                let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
                for batch in reader {
                    let batch = batch.unwrap();
                    let col = batch.column_by_name("Id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
                    lake.rows += col.len();
                    lake.ids.extend((0..col.len()).map(|i| col.value(i).to_string()));
                    if let Some(flags) =
                        batch.column_by_name("IsDeleted").and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
                    {
                        let gone = (0..col.len()).filter(|&i| flags.is_valid(i) && flags.value(i));
                        lake.deleted.extend(gone.map(|i| col.value(i).to_string()));
                    }
                }
            } else {
                lake.other_files.push(p);
            }
        }
    }
    lake
}
