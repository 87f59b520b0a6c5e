//! Throughput of the writer's CPU work per Bulk API page: casting text columns to the account
//! schema, then encoding Parquet (zstd). Not part of the suite; run it and record the numbers in
//! BENCHMARKS.md:
//!
//! ```sh
//! cargo test --release --test writers_bench -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use bulkflow_engine::schema::TableSchema;
use bulkflow_engine::schema::cast::Caster;
use bulkflow_engine::tasks::convert::config::ExtraColumns;
use bulkflow_engine::tasks::object_store::config::FileFormat;
use bulkflow_engine::tasks::object_store::encode::encode;

#[path = "support/text_page.rs"]
mod text_page;

use text_page::account_page;

/// Rows per batch: a typical Bulk API page with `batch_size` unset.
const ROWS: usize = 50_000;
const ROUNDS: usize = 10;

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
    let input = account_page(0, ROWS);
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
