//! Writes the state-store fixture of this release: a small store made through the ledger (a
//! written run, a failed one, one part-way through its results, a replay id, a watermark), every
//! record as its bytes, as JSON on stdout. Run once per release whose record formats changed, into
//! `engine/tests/fixtures/store/VERSION.json`; `tests/store_formats.rs` opens every such file with
//! the current code, so a format change that cannot read an older release's store fails there.
//!
//! `cargo run -p bulkflow-engine --example store_fixture > engine/tests/fixtures/store/0.1.0.json`

use std::collections::BTreeMap;
use std::sync::Arc;

use bulkflow_engine::run::{Ledger, RunState, Transition, Update};
use bulkflow_engine::schedule::ManualClock;
use bulkflow_engine::store::{MemoryStore, StateStore, Tree};
use chrono::{TimeZone, Utc};
use serde_json::json;

const FLOW: &str = "salesforce_bulkapi_query_account";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).single().ok_or("a fixed start time")?;
    let clock = Arc::new(ManualClock::new(start));
    let ledger = Ledger::new(store.clone(), clock.clone());

    let written = ledger.open_run(FLOW, start)?.run.id().clone();
    ledger.record_job(&written, "750FIXTURE0000001")?;
    ledger.update(&written, &Update::new().transition(Transition::Advance(RunState::CompletedEvent)))?;
    ledger
        .update(&written, &Update::new().total_batches(0).transition(Transition::Advance(RunState::ResultsFetched)))?;
    ledger.update(&written, &Update::new().transition(Transition::Advance(RunState::Published)))?;
    ledger.update(&written, &Update::new().transition(Transition::Advance(RunState::Written)))?;
    ledger.raise_watermark(FLOW, start.timestamp())?;

    clock.advance(std::time::Duration::from_secs(3600));
    let failed = ledger.open_run(FLOW, start + chrono::Duration::hours(1))?.run.id().clone();
    ledger.record_job(&failed, "750FIXTURE0000002")?;
    ledger.transition(&failed, Transition::Fail("fixture: the job failed".into()))?;

    clock.advance(std::time::Duration::from_secs(3600));
    let reading = ledger.open_run(FLOW, start + chrono::Duration::hours(2))?.run.id().clone();
    ledger.record_job(&reading, "750FIXTURE0000003")?;
    ledger.results_started(&reading, json!({"job": "750FIXTURE0000003"}))?;

    ledger.set_replay_id("listener", b"fixture-replay-id")?;

    let mut trees = BTreeMap::new();
    for tree in Tree::ALL {
        let entries: Vec<[String; 2]> =
            store.scan_prefix(tree, b"")?.into_iter().map(|(k, v)| [hex(&k), hex(&v)]).collect();
        trees.insert(tree.name(), entries);
    }
    let fixture = json!({"release": env!("CARGO_PKG_VERSION"), "trees": trees});
    println!("{}", serde_json::to_string_pretty(&fixture)?);
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
