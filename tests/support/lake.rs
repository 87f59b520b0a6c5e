//! What a lake of Parquet files holds, read with the parquet crate's own reader. Included with
//! `#[path = "support/lake.rs"] mod lake;`.

use std::collections::BTreeSet;
use std::path::Path;

use arrow::array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The distinct `Id`s in the Parquet files anywhere under `dir`.
pub fn lake_ids(dir: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
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
                    ids.extend((0..col.len()).map(|i| col.value(i).to_string()));
                }
            }
        }
    }
    ids
}
