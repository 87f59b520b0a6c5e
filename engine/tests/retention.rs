//! Retention: an engine exporting every few minutes for weeks keeps a store of constant size,
//! because finished runs older than the retention age are compacted with their checkpoints and
//! job index entries. Thousands of runs go through the whole export cycle on a real sled store;
//! the records and the bytes on disk stop growing once the retention window is full.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bulkflow_engine::run::{Ledger, PageMark, RunState};
use bulkflow_engine::schedule::{Clock, ManualClock};
use bulkflow_engine::store::{SledStore, StateStore, Tree};
use chrono::{DateTime, Utc};
use serde_json::json;

const FLOW: &str = "salesforce_bulkapi_query_account";
const EVERY: Duration = Duration::from_secs(5 * 60);
const RETENTION: Duration = Duration::from_secs(6 * 3600);

/// One run through every stage: job, three pages of batches, published, written by two sinks.
fn export_one(ledger: &Ledger, clock: &ManualClock, n: usize) {
    let tick: DateTime<Utc> = clock.now();
    let id = ledger.open_run(FLOW, tick).unwrap().run.id().clone();
    let job = format!("750R{n:011}");
    ledger.record_job(&id, &job).unwrap();
    ledger.results_started(&id, json!({"data": {"JobIdentifier": job}})).unwrap();
    let subject = "salesforce_bulkapi.query_jobs.account";
    let mut seq = 0;
    for page in 0..3u64 {
        let locator = (page > 0).then(|| format!("MTAwMDA{page}"));
        let next = (page < 2).then(|| format!("MTAwMDA{}", page + 1));
        ledger.page_fetched(&id, page, PageMark { locator, rows: 20_000, batches: 2 }, next).unwrap();
        for _ in 0..2 {
            ledger.batch_published(&id, seq, subject).unwrap();
            seq += 1;
        }
    }
    for sink in ["writer_parquet", "writer_postgres"] {
        for s in 0..seq {
            ledger.batch_written(&id, sink, s).unwrap();
        }
    }
    assert_eq!(ledger.get_run(&id).unwrap().unwrap().state(), RunState::Written);
}

fn records(store: &dyn StateStore) -> usize {
    Tree::ALL.iter().map(|t| store.scan_prefix(*t, b"").unwrap().len()).sum()
}

fn bytes_on_disk(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() { bytes_on_disk(&entry.path()) } else { meta.len() };
    }
    total
}

#[test]
fn the_store_stays_flat_over_thousands_of_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let clock = ManualClock::new("2026-11-25T09:00:00Z".parse().unwrap());
    let ledger = Ledger::new(store.clone(), Arc::new(clock.clone()));
    ledger.register_consumer("writer_parquet", "salesforce_bulkapi.>");
    ledger.register_consumer("writer_postgres", "salesforce_bulkapi.query_jobs.account");

    let mut samples = Vec::new();
    // Sampled right after a compaction (every 504 runs is every 42 hours), so samples compare.
    let runs = 2016;
    for n in 1..=runs {
        export_one(&ledger, &clock, n);
        clock.advance(EVERY);
        // The node compacts on a timer; here every hour of simulated time.
        if n % 12 == 0 {
            ledger.compact(RETENTION).unwrap();
        }
        if n % 504 == 0 {
            samples.push((n, records(&*store), bytes_on_disk(dir.path())));
        }
    }
    eprintln!("(runs, records, bytes on disk): {samples:?}");
    // Six hours of runs every five minutes, plus up to an hour not yet compacted, plus the flow's
    // marks: the same whether 504 or 2,016 runs went through.
    let window = (RETENTION.as_secs() / EVERY.as_secs()) as usize + 12;
    for (n, records, _) in &samples {
        // A run leaves its record, two checkpoints and a job index entry.
        assert!(*records <= window * 4 + 2, "{records} records after {n} runs");
    }
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    assert_eq!(first.1, last.1, "records after {} runs and after {} runs", first.0, last.0);
    assert!(
        last.2 <= first.2 * 3 / 2,
        "the store grew from {} bytes after {} runs to {} bytes after {} runs",
        first.2,
        first.0,
        last.2,
        last.0
    );
    assert!(ledger.watermark(FLOW).unwrap().is_some());
}
