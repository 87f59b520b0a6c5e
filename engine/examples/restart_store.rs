//! Writes the state store `scripts/bench.sh restart` starts the engine on: `FINISHED` runs of the
//! seed's Account query flow that went all the way to `written` (five batches each, published and
//! written by the seed's writer, as a real run records them), one a minute back from now, and
//! `UNFINISHED` newer runs a crash left at `scheduled`, which a start picks up first.
//!
//! The runs are made through the ledger on a memory store, then copied into the sled store in one
//! commit: one fsync instead of one per step of 10,000 runs.
//!
//! `cargo run --release -p bulkflow-engine --example restart_store -- STATE_DIR [FINISHED] [UNFINISHED]`

use std::sync::Arc;
use std::time::Duration;

use bulkflow_engine::run::{Ledger, RunState, Transition, Update};
use bulkflow_engine::schedule::ManualClock;
use bulkflow_engine::store::{Batch, Commit, MemoryStore, SledStore, StateStore, Tree};
use chrono::Utc;
use serde_json::json;

const FLOW: &str = "salesforce_bulkapi_query_account";
const WRITER: &str = "salesforce_bulkapi_writer_account";
const SUBJECT: &str = "salesforce_bulkapi.query_jobs.account";
const BATCHES: u64 = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: restart_store STATE_DIR [FINISHED] [UNFINISHED]")?;
    let finished: i64 = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let unfinished: i64 = args.next().map_or(Ok(10), |a| a.parse())?;

    let memory = Arc::new(MemoryStore::new());
    let now = Utc::now();
    let first = now - chrono::Duration::minutes(finished + unfinished + 1);
    let clock = Arc::new(ManualClock::new(first));
    let ledger = Ledger::new(memory.clone(), clock.clone());
    ledger.register_consumer(WRITER, SUBJECT);

    for i in 0..finished {
        let at = first + chrono::Duration::minutes(i);
        let id = ledger.open_run(FLOW, at)?.run.id().clone();
        ledger.record_job(&id, &format!("750R{i:014}"))?;
        ledger.results_started(&id, json!({"job": format!("750R{i:014}")}))?;
        ledger.update(
            &id,
            &Update::new().total_batches(BATCHES).transition(Transition::Advance(RunState::ResultsFetched)),
        )?;
        for seq in 0..BATCHES {
            ledger.batch_published(&id, seq, SUBJECT)?;
        }
        for seq in 0..BATCHES {
            ledger.batch_written(&id, WRITER, seq)?;
        }
        let state = ledger.get_run(&id)?.ok_or("the run just made")?.state();
        if state != RunState::Written {
            return Err(format!("run {id} ended {state}, not written").into());
        }
        clock.advance(Duration::from_secs(60));
    }
    for i in 0..unfinished {
        ledger.open_run(FLOW, first + chrono::Duration::minutes(finished + i))?;
    }
    ledger.raise_watermark(FLOW, (first + chrono::Duration::minutes(finished)).timestamp())?;

    let sled = SledStore::open(&dir)?;
    let mut batch = Batch::new();
    let mut records = 0;
    for tree in Tree::ALL {
        for (key, value) in memory.scan_prefix(tree, b"")? {
            batch.put(tree, key, value);
            records += 1;
        }
    }
    if sled.commit(batch)? != Commit::Applied {
        return Err("an unconditional batch conflicted".into());
    }
    eprintln!("{dir}: {finished} written runs, {unfinished} at scheduled, {records} records");
    Ok(())
}
