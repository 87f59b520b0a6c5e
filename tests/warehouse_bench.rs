//! Throughput of the PostgreSQL warehouse: Account pages (already cast, as `convert` hands them
//! on) upserted into a fresh table, then the same pages again (every row a conflict, as a
//! redelivery or an overlapping run makes them). Not part of the suite; run it and record the
//! numbers in BENCHMARKS.md:
//!
//! ```sh
//! cargo test --test warehouse_bench -- --ignored --nocapture
//! ```

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use bulkflow_engine::schema::TableSchema;
use bulkflow_engine::warehouse::postgres::PostgresWarehouse;
use bulkflow_engine::warehouse::postgres::sql::TableName;
use bulkflow_engine::warehouse::{ChangeType, Warehouse};
use bulkflow_testkit::postgres::Postgres;

const ROWS: usize = 50_000;
const PAGES: usize = 10;

fn schema() -> TableSchema {
    TableSchema::from_json(include_str!("../resources/salesforce/schema_account.json")).unwrap()
}

fn page(p: usize) -> RecordBatch {
    let text = |f: &dyn Fn(usize) -> String| -> ArrayRef { Arc::new(StringArray::from_iter_values((0..ROWS).map(f))) };
    let ts = |base: i64| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from_iter_values((0..ROWS).map(|i| base + i as i64)).with_timezone("UTC"))
    };
    let columns = vec![
        text(&|i| format!("001P{p:03}{i:011}")),
        text(&|i| format!("Account number {i}, Incorporated")),
        text(&|i| ["Customer", "Partner", "Prospect"][i % 3].to_string()),
        text(&|i| ["Energy", "Banking", "Retail", "Media"][i % 4].to_string()),
        Arc::new(Float64Array::from_iter((0..ROWS).map(|i| (i % 7 != 0).then_some(i as f64 * 37.5)))),
        ts(1_704_067_200_000),
        ts(1_764_057_600_000),
        ts(1_764_057_600_000),
        Arc::new(BooleanArray::from(vec![false; ROWS])),
    ];
    RecordBatch::try_new(schema().arrow_schema(), columns).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored --nocapture"]
async fn postgres_upsert_throughput() {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let url = pg.database("bench");
    let table = TableName { schema: Some("salesforce".into()), table: "account".into() };
    let warehouse = PostgresWarehouse::new(url, table, Some(schema()));
    let pages: Vec<RecordBatch> = (0..PAGES).map(page).collect();
    for round in ["insert (new Ids)", "upsert (every Id exists)"] {
        let start = Instant::now();
        for p in &pages {
            warehouse.apply(p, ChangeType::Upsert).await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let rows = (ROWS * PAGES) as f64;
        println!(
            "{round}: {PAGES} pages of {ROWS} rows in {secs:.2} s: {:.0} rows/s, {:.0} ms per page",
            rows / secs,
            secs * 1000.0 / PAGES as f64
        );
    }
}

/// A sweep (reconciling by `Id`): the 500,000-row table, its live set sent as 10 parts of 50,000
/// `Id`s with 2,000 `Id`s left out of each (records deleted in Salesforce), as the run sends them;
/// time per part kept, and for the last part, which removes the 10,000 rows no part names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored --nocapture"]
async fn postgres_sweep_throughput() {
    use bulkflow_engine::warehouse::sweep::{SweepOutcome, SweepPart};
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let url = pg.database("bench");
    let table = TableName { schema: Some("salesforce".into()), table: "account".into() };
    let warehouse = PostgresWarehouse::new(url, table, Some(schema()));
    let pages: Vec<RecordBatch> = (0..PAGES).map(page).collect();
    for p in &pages {
        warehouse.apply(p, ChangeType::Upsert).await.unwrap();
    }
    let before = chrono::Utc::now();
    let start = Instant::now();
    let mut last = None;
    for (n, p) in pages.iter().enumerate() {
        let live = p.slice(1_000, ROWS - 2_000);
        let part = SweepPart { sweep: "bench".into(), part: n as u64, parts: PAGES as u64, before };
        let t = Instant::now();
        let outcome = warehouse.sweep(&live, &part).await.unwrap();
        if n + 1 == PAGES {
            assert_eq!(outcome, SweepOutcome::Swept { removed: (2_000 * PAGES) as u64 });
            last = Some(t.elapsed().as_secs_f64());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let kept = ((ROWS - 2_000) * PAGES) as f64;
    println!(
        "sweep: {PAGES} parts, {kept} live Ids, {} rows removed, in {secs:.2} s: {:.0} Ids/s; the last part (the sweep itself) {:.0} ms",
        2_000 * PAGES,
        kept / secs,
        last.unwrap() * 1000.0
    );
}
