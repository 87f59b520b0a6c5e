//! Stores written by every release open in this build: each `fixtures/store/RELEASE.json` (made by
//! `examples/store_fixture.rs` of that release) is loaded into a real sled store and read through
//! the ledger, so a record format change that cannot read (or upgrade) an older release's records
//! fails here. A record from a newer release is refused naming it, and left as it is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulkflow_engine::run::{Ledger, RunFilter, RunId, RunRecord, RunState};
use bulkflow_engine::schedule::SystemClock;
use bulkflow_engine::store::{Batch, Commit, Record, SledStore, StateStore, Tree};
use chrono::{TimeZone, Utc};
use serde_json::Value;

const FLOW: &str = "salesforce_bulkapi_query_account";

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no store fixtures in {}", dir.display());
    files
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// A sled store in `dir` holding exactly the fixture's records.
fn load(fixture: &Path, dir: &Path) -> Arc<SledStore> {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let store = SledStore::open(dir).unwrap();
    let mut batch = Batch::new();
    for tree in Tree::ALL {
        for entry in json["trees"][tree.name()].as_array().into_iter().flatten() {
            batch.put(tree, unhex(entry[0].as_str().unwrap()), unhex(entry[1].as_str().unwrap()));
        }
    }
    assert!(matches!(store.commit(batch).unwrap(), Commit::Applied));
    Arc::new(store)
}

fn run_id(hours_after: i64) -> RunId {
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
    let ledger = Ledger::new(Arc::new(bulkflow_engine::store::MemoryStore::new()), Arc::new(SystemClock));
    ledger.open_run(FLOW, start + chrono::Duration::hours(hours_after)).unwrap().run.id().clone()
}

#[test]
fn every_released_store_reads_as_it_was_written() {
    for fixture in fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(load(&fixture, dir.path()), Arc::new(SystemClock));
        let name = fixture.display();
        let runs = ledger.list_runs(&RunFilter::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let states: Vec<(RunId, RunState, Option<String>)> =
            runs.iter().map(|r| (r.id().clone(), r.state(), r.job_id().map(str::to_string))).collect();
        let expected = vec![
            (run_id(0), RunState::Written, Some("750FIXTURE0000001".to_string())),
            (run_id(1), RunState::Failed, Some("750FIXTURE0000002".to_string())),
            (run_id(2), RunState::CompletedEvent, Some("750FIXTURE0000003".to_string())),
        ];
        let mut states = states;
        states.sort_by_key(|s| s.0.to_string());
        assert_eq!(states, expected, "{name}");
        let failed = ledger.get_run(&run_id(1)).unwrap().unwrap();
        assert_eq!(failed.last_error(), Some("fixture: the job failed"), "{name}");
        assert_eq!(failed.failed_in(), Some(RunState::JobCreated), "{name}");
        for (n, job) in ["750FIXTURE0000001", "750FIXTURE0000002", "750FIXTURE0000003"].into_iter().enumerate() {
            assert_eq!(ledger.run_for_job(job).unwrap(), Some(run_id(n as i64)), "{name}");
        }
        let results = ledger.checkpoint(&run_id(2), bulkflow_engine::run::RESULTS_STAGE).unwrap();
        assert!(results.is_some(), "{name}: the reading run's results checkpoint");
        assert_eq!(ledger.replay_id("listener").unwrap().as_deref(), Some(&b"fixture-replay-id"[..]), "{name}");
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        assert_eq!(ledger.watermark(FLOW).unwrap(), Some(start.timestamp()), "{name}");
    }
}

#[test]
fn a_record_from_a_newer_release_is_refused_naming_it_and_never_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = load(fixtures().last().unwrap(), dir.path());
    let key = run_id(2).as_str().as_bytes().to_vec();
    let mut bytes = store.get(Tree::Runs, &key).unwrap().unwrap();
    bytes[..2].copy_from_slice(&(RunRecord::VERSION + 1).to_be_bytes());
    let mut batch = Batch::new();
    batch.put(Tree::Runs, key.clone(), bytes.clone());
    assert!(matches!(store.commit(batch).unwrap(), Commit::Applied));

    let ledger = Ledger::new(store.clone(), Arc::new(SystemClock));
    let err = ledger.get_run(&run_id(2)).unwrap_err().to_string();
    assert!(err.contains("in tree runs") && err.contains("written by a newer bulkflow"), "{err}");
    assert!(err.contains(&run_id(2).to_string()), "{err}");
    assert!(ledger.list_runs(&RunFilter::default()).is_err());
    assert!(ledger.compact(std::time::Duration::ZERO).is_err(), "retention does not pass over it");
    assert!(ledger.results_started(&run_id(2), Value::Null).is_err());
    assert_eq!(store.get(Tree::Runs, &key).unwrap(), Some(bytes), "the record is left as it was");
}
