//! Throughput of the writer's CPU work per Bulk API page: casting text columns to the account
//! schema, then encoding Parquet (zstd). Not part of the suite; run it and record the numbers in
//! BENCHMARKS.md:
//!
//! ```sh
//! cargo test --release --test writers_bench -- --ignored --nocapture
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bulkflow_engine::schema::TableSchema;
use bulkflow_engine::tasks::convert::cast::Caster;
use bulkflow_engine::tasks::convert::config::ExtraColumns;
use bulkflow_engine::tasks::object_store::config::FileFormat;
use bulkflow_engine::tasks::object_store::encode::encode;

/// Rows per batch: a typical Bulk API page with `batch_size` unset.
const ROWS: usize = 50_000;
const ROUNDS: usize = 10;

fn page() -> RecordBatch {
    let col = |f: &dyn Fn(usize) -> String| -> ArrayRef { Arc::new(StringArray::from_iter_values((0..ROWS).map(f))) };
    let names = ["Id", "Name", "Type", "Industry", "AnnualRevenue", "CreatedDate", "LastModifiedDate"];
    let columns = vec![
        col(&|i| format!("001R0000{i:010}")),
        col(&|i| format!("Account number {i}, Incorporated")),
        col(&|i| ["Customer", "Partner", ""][i % 3].to_string()),
        col(&|i| ["Energy", "Banking", "Retail", "Media"][i % 4].to_string()),
        col(&|i| if i % 7 == 0 { String::new() } else { format!("{}.{:02}", i * 37, i % 100) }),
        col(&|i| format!("2024-{:02}-{:02}T{:02}:{:02}:00.000Z", i % 12 + 1, i % 28 + 1, i % 24, i % 60)),
        col(&|i| format!("2026-11-25T08:{:02}:{:02}.000+0000", i % 60, i % 60)),
    ];
    let schema = Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>());
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn report(what: &str, elapsed: Duration, bytes_in: usize) {
    let secs = elapsed.as_secs_f64();
    let rows = (ROWS * ROUNDS) as f64;
    println!(
        "{what:<22} {:>10.0} rows/s  {:>8.1} MB/s of text in  ({:.2} ms per {ROWS}-row page)",
        rows / secs,
        (bytes_in * ROUNDS) as f64 / secs / 1e6,
        secs * 1000.0 / ROUNDS as f64
    );
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture, preferably --release"]
fn convert_and_parquet_throughput() {
    let schema_text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/resources/salesforce/schema_account.json"))
            .unwrap();
    let caster = Caster::new(TableSchema::from_json(&schema_text).unwrap(), ExtraColumns::Drop);
    let input = page();
    let text_bytes: usize = input.columns().iter().map(|c| c.get_array_memory_size()).sum();

    let started = Instant::now();
    let mut cast = None;
    for _ in 0..ROUNDS {
        let c = caster.cast(&input).unwrap();
        assert!(c.errors.is_empty());
        cast = Some(c.batch);
    }
    report("convert (cast)", started.elapsed(), text_bytes);

    let batch = cast.unwrap();
    let started = Instant::now();
    let mut size = 0;
    for _ in 0..ROUNDS {
        size = encode(&batch, FileFormat::Parquet).unwrap().len();
    }
    report("parquet encode (zstd)", started.elapsed(), text_bytes);
    println!("parquet file: {:.2} MB for {ROWS} rows ({text_bytes} bytes of Arrow text in)", size as f64 / 1e6);
}
