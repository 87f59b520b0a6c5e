use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::run::{Checkpoint, PageMark, Transition, Update};
use crate::schedule::ManualClock;
use crate::store::{MemoryStore, SledStore, TempSled};

const FLOW: &str = "salesforce_bulkapi_query_account";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn ledger_on(store: Arc<dyn StateStore>) -> (Ledger, ManualClock) {
    let clock = ManualClock::new(at("2026-11-25T09:05:01Z"));
    (Ledger::new(store, Arc::new(clock.clone())), clock)
}

fn ledger() -> (Ledger, ManualClock) {
    ledger_on(Arc::new(MemoryStore::new()))
}

fn open(ledger: &Ledger, tick: &str) -> RunId {
    ledger.open_run(FLOW, at(tick)).unwrap().run.id().clone()
}

fn advance(ledger: &Ledger, id: &RunId, to: RunState) -> RunRecord {
    ledger.transition(id, Transition::Advance(to)).unwrap()
}

/// Walks a run from `scheduled` to `written`.
fn export(ledger: &Ledger, id: &RunId, job: &str) -> RunRecord {
    ledger.record_job(id, job).unwrap();
    for to in [RunState::CompletedEvent, RunState::ResultsFetched, RunState::Published] {
        advance(ledger, id, to);
    }
    advance(ledger, id, RunState::Written)
}

#[test]
fn opening_a_tick_twice_returns_the_same_run() {
    let (ledger, clock) = ledger();
    let first = ledger.open_run(FLOW, at("2026-11-25T09:05:00Z")).unwrap();
    assert!(first.created);
    assert_eq!(first.run.id().as_str(), format!("{FLOW}@2026-11-25T09:05:00Z"));
    assert_eq!(first.run.state(), RunState::Scheduled);
    assert_eq!(first.run.created_at(), at("2026-11-25T09:05:01Z"));

    clock.advance(Duration::from_secs(30));
    // The same tick, fired again after a restart (and with sub-second noise).
    let again = ledger.open_run(FLOW, at("2026-11-25T09:05:00.250Z")).unwrap();
    assert!(!again.created);
    assert_eq!(again.run, first.run);
    assert_eq!(ledger.list_runs(&RunFilter::default()).unwrap().len(), 1);
}

#[test]
fn concurrent_opens_of_one_tick_create_one_run() {
    let (ledger, _) = ledger();
    let created: usize = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..4).map(|_| s.spawn(|| ledger.open_run(FLOW, at("2026-11-25T09:05:00Z")).unwrap().created)).collect();
        handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
    });
    assert_eq!(created, 1);
}

#[test]
fn open_run_refuses_an_empty_flow_name() {
    let (ledger, _) = ledger();
    assert!(matches!(ledger.open_run("", at("2026-11-25T09:05:00Z")), Err(LedgerError::EmptyFlowName)));
}

#[test]
fn last_tick_follows_the_latest_opened_tick() {
    let (ledger, _) = ledger();
    assert_eq!(ledger.last_tick(FLOW).unwrap(), None);
    open(&ledger, "2026-11-25T09:05:00Z");
    open(&ledger, "2026-11-25T09:00:00Z");
    assert_eq!(ledger.last_tick(FLOW).unwrap(), Some(at("2026-11-25T09:05:00Z")));
    assert_eq!(ledger.last_tick("other").unwrap(), None);
}

#[test]
fn transitions_are_stamped_and_counted() {
    let (ledger, clock) = ledger();
    let id = open(&ledger, "2026-11-25T09:05:00Z");
    clock.advance(Duration::from_secs(9));
    let run = ledger.transition(&id, Transition::Fail("INVALID_SESSION_ID".into())).unwrap();
    assert_eq!(run.state(), RunState::Failed);
    assert_eq!(run.updated_at(), at("2026-11-25T09:05:10Z"));
    assert_eq!(run.history().last().unwrap().at, at("2026-11-25T09:05:10Z"));
    let run = ledger.transition(&id, Transition::Retry).unwrap();
    assert_eq!((run.state(), run.attempts()), (RunState::Scheduled, 2));
    assert_eq!(run.last_error(), Some("INVALID_SESSION_ID"));
    assert_eq!(ledger.get_run(&id).unwrap().unwrap(), run);
}

#[test]
fn illegal_transition_is_refused_and_writes_nothing() {
    let (ledger, _) = ledger();
    let id = open(&ledger, "2026-11-25T09:05:00Z");
    let before = ledger.get_run(&id).unwrap();
    let update = Update::new()
        .transition(Transition::Advance(RunState::Published))
        .checkpoint(Checkpoint::new("publish", json!({})));
    let err = ledger.update(&id, &update).unwrap_err();
    assert!(matches!(err, LedgerError::IllegalTransition { .. }), "{err:?}");
    assert!(err.to_string().contains(id.as_str()), "{err}");
    assert_eq!(ledger.get_run(&id).unwrap(), before);
    assert_eq!(ledger.checkpoint(&id, "publish").unwrap(), None);
}

#[test]
fn unknown_run_is_an_error() {
    let (ledger, _) = ledger();
    let id = RunId::new(FLOW, at("2026-11-25T09:05:00Z"));
    assert!(matches!(ledger.transition(&id, Transition::Cancel("x".into())), Err(LedgerError::UnknownRun(_))));
    assert!(matches!(
        ledger.update(&id, &Update::new().checkpoint(Checkpoint::new("s", json!(null)))),
        Err(LedgerError::UnknownRun(_))
    ));
}

#[test]
fn record_job_moves_to_job_created_and_indexes_the_job() {
    let (ledger, _) = ledger();
    let id = open(&ledger, "2026-11-25T09:05:00Z");
    assert_eq!(ledger.run_for_job("750A").unwrap(), None);
    let run = ledger.record_job(&id, "750A").unwrap();
    assert_eq!((run.state(), run.job_id()), (RunState::JobCreated, Some("750A")));
    assert_eq!(ledger.run_for_job("750A").unwrap(), Some(id.clone()));

    // A redelivered "job created" is harmless; a second job for the run is refused.
    assert_eq!(ledger.record_job(&id, "750A").unwrap(), run);
    assert!(matches!(ledger.record_job(&id, "750B"), Err(LedgerError::JobMismatch { .. })));

    // A job can belong to one run only.
    let other = open(&ledger, "2026-11-25T09:10:00Z");
    assert!(matches!(ledger.record_job(&other, "750A"), Err(LedgerError::JobTaken { .. })));
    assert_eq!(ledger.get_run(&other).unwrap().unwrap().state(), RunState::Scheduled);
}

#[test]
fn record_job_on_a_run_past_scheduled_is_refused_without_indexing() {
    let (ledger, _) = ledger();
    let id = open(&ledger, "2026-11-25T09:05:00Z");
    ledger.transition(&id, Transition::Cancel("operator".into())).unwrap();
    assert!(matches!(ledger.record_job(&id, "750A"), Err(LedgerError::IllegalTransition { .. })));
    assert_eq!(ledger.run_for_job("750A").unwrap(), None);
}

#[test]
fn watermark_moves_only_on_success_and_never_back() {
    let (ledger, _) = ledger();
    assert_eq!(ledger.watermark(FLOW).unwrap(), None);

    let failed = open(&ledger, "2026-11-25T09:00:00Z");
    ledger.record_job(&failed, "750F").unwrap();
    ledger.transition(&failed, Transition::Fail("boom".into())).unwrap();
    let cancelled = open(&ledger, "2026-11-25T09:02:00Z");
    ledger.transition(&cancelled, Transition::Cancel("operator".into())).unwrap();
    let in_flight = open(&ledger, "2026-11-25T09:04:00Z");
    advance(&ledger, &in_flight, RunState::JobCreated);
    advance(&ledger, &in_flight, RunState::CompletedEvent);
    assert_eq!(ledger.watermark(FLOW).unwrap(), None);

    let late = open(&ledger, "2026-11-25T09:05:00Z");
    let latest = open(&ledger, "2026-11-25T09:10:00Z");
    export(&ledger, &latest, "750L");
    let t_latest = at("2026-11-25T09:10:00Z").timestamp();
    assert_eq!(ledger.watermark(FLOW).unwrap(), Some(t_latest));

    // An older run succeeding after a newer one must not reopen the window.
    export(&ledger, &late, "750E");
    assert_eq!(ledger.watermark(FLOW).unwrap(), Some(t_latest));
    assert_eq!(ledger.raise_watermark(FLOW, t_latest - 60).unwrap(), t_latest);
    assert_eq!(ledger.watermark(FLOW).unwrap(), Some(t_latest));

    // `completed` (a flow that starts no export) is success too.
    let later = open(&ledger, "2026-11-25T09:15:00Z");
    advance(&ledger, &later, RunState::Completed);
    assert_eq!(ledger.watermark(FLOW).unwrap(), Some(at("2026-11-25T09:15:00Z").timestamp()));
    assert_eq!(ledger.watermark("other_flow").unwrap(), None);
}

#[test]
fn update_applies_transition_total_and_checkpoint_together() {
    let (ledger, clock) = ledger();
    let id = open(&ledger, "2026-11-25T09:05:00Z");
    ledger.record_job(&id, "750A").unwrap();
    advance(&ledger, &id, RunState::CompletedEvent);
    clock.advance(Duration::from_secs(60));
    let input = json!({"data": {"job_id": "750A"}, "meta": {"run_id": id.as_str()}});
    let run = ledger
        .update(
            &id,
            &Update::new()
                .transition(Transition::Advance(RunState::ResultsFetched))
                .total_batches(12)
                .checkpoint(Checkpoint::new("publish", input.clone())),
        )
        .unwrap();
    assert_eq!(run.total_batches(), Some(12));
    let cp = ledger.checkpoint(&id, "publish").unwrap().unwrap();
    assert_eq!(cp.input, input);
    assert_eq!(cp.updated_at, at("2026-11-25T09:06:01Z"));
}

#[test]
fn checkpoints_belong_to_their_run() {
    let (ledger, _) = ledger();
    let a = open(&ledger, "2026-11-25T09:05:00Z");
    let b = open(&ledger, "2026-11-25T09:10:00Z");
    for (id, stage) in [(&a, "fetch"), (&a, "publish"), (&b, "fetch")] {
        ledger.update(id, &Update::new().checkpoint(Checkpoint::new(stage, json!({"run": id.as_str()})))).unwrap();
    }
    let stages: Vec<_> = ledger.checkpoints(&a).unwrap().into_iter().map(|c| c.stage).collect();
    assert_eq!(stages, ["fetch", "publish"]);
    assert_eq!(ledger.checkpoint(&b, "fetch").unwrap().unwrap().input, json!({"run": b.as_str()}));
    assert_eq!(ledger.checkpoint(&b, "publish").unwrap(), None);
}

#[test]
fn progress_updates_from_concurrent_sinks_are_all_kept() {
    for store in [Arc::new(MemoryStore::new()) as Arc<dyn StateStore>, Arc::new(TempSled::new()) as Arc<dyn StateStore>]
    {
        let (ledger, _) = ledger_on(store);
        let id = open(&ledger, "2026-11-25T09:05:00Z");
        ledger.update(&id, &Update::new().checkpoint(Checkpoint::new("write", json!({})))).unwrap();
        std::thread::scope(|s| {
            for sink in ["parquet", "postgres", "bigquery"] {
                let (ledger, id) = (&ledger, &id);
                s.spawn(move || {
                    for batch in 0..10 {
                        ledger
                            .update_progress(id, "write", |p| {
                                p.mark_written(sink, batch);
                            })
                            .unwrap();
                    }
                });
            }
        });
        let cp = ledger.checkpoint(&id, "write").unwrap().unwrap();
        for sink in ["parquet", "postgres", "bigquery"] {
            assert_eq!(cp.progress.unwritten(sink, 10).count(), 0, "{sink}");
        }
    }
}

#[test]
fn progress_needs_an_existing_checkpoint() {
    let (ledger, _) = ledger();
    let id = open(&ledger, "2026-11-25T09:05:00Z");
    assert!(matches!(
        ledger.update_progress(&id, "write", |p| {
            p.mark_published(0);
        }),
        Err(LedgerError::NoCheckpoint { .. })
    ));
}

#[test]
fn list_filters_by_exact_flow_and_state_and_resume_skips_terminal_runs() {
    let (ledger, _) = ledger();
    let t = at("2026-11-25T09:05:00Z");
    let a = ledger.open_run("a", t).unwrap().run.id().clone();
    let a_later = ledger.open_run("a", at("2026-11-25T09:10:00Z")).unwrap().run.id().clone();
    // Its ids start with "a@", the prefix of flow "a"'s ids.
    let tricky = ledger.open_run("a@b", t).unwrap().run.id().clone();
    let done = ledger.open_run("c", t).unwrap().run.id().clone();
    advance(&ledger, &done, RunState::Completed);
    ledger.transition(&a, Transition::Fail("x".into())).unwrap();

    let ids = |filter: RunFilter| -> Vec<RunId> {
        ledger.list_runs(&filter).unwrap().into_iter().map(|r| r.id().clone()).collect()
    };
    assert_eq!(ids(RunFilter { flow: Some("a".into()), state: None }), [a.clone(), a_later.clone()]);
    assert_eq!(ids(RunFilter { flow: Some("a@b".into()), state: None }), std::slice::from_ref(&tricky));
    assert_eq!(ids(RunFilter { flow: None, state: Some(RunState::Failed) }), std::slice::from_ref(&a));
    assert_eq!(ids(RunFilter::default()).len(), 4);
    let resumable: Vec<_> = ledger.resumable_runs().unwrap().into_iter().map(|r| r.id().clone()).collect();
    assert_eq!(resumable, [a, a_later, tricky]);
}

#[test]
fn compaction_removes_only_old_finished_runs_and_their_records() {
    let (ledger, clock) = ledger();
    let written = open(&ledger, "2026-11-25T09:00:00Z");
    export(&ledger, &written, "750W");
    ledger.update(&written, &Update::new().checkpoint(Checkpoint::new("write", json!({})))).unwrap();
    let cancelled = open(&ledger, "2026-11-25T09:01:00Z");
    ledger.transition(&cancelled, Transition::Cancel("operator".into())).unwrap();
    let failed = open(&ledger, "2026-11-25T09:02:00Z");
    ledger.transition(&failed, Transition::Fail("x".into())).unwrap();
    let stuck = open(&ledger, "2026-11-25T09:03:00Z");
    ledger.record_job(&stuck, "750S").unwrap();

    clock.advance(Duration::from_secs(7 * 24 * 3600));
    let recent = open(&ledger, "2026-12-02T09:00:00Z");
    advance(&ledger, &recent, RunState::Completed);
    let watermark = ledger.watermark(FLOW).unwrap();

    assert_eq!(ledger.compact(Duration::from_secs(24 * 3600)).unwrap(), 2);
    for gone in [&written, &cancelled] {
        assert_eq!(ledger.get_run(gone).unwrap(), None);
        assert!(ledger.checkpoints(gone).unwrap().is_empty());
    }
    assert_eq!(ledger.run_for_job("750W").unwrap(), None);
    for kept in [&failed, &stuck, &recent] {
        assert!(ledger.get_run(kept).unwrap().is_some(), "{kept}");
    }
    assert_eq!(ledger.run_for_job("750S").unwrap(), Some(stuck));
    assert_eq!(ledger.watermark(FLOW).unwrap(), watermark);
    assert_eq!(ledger.last_tick(FLOW).unwrap(), Some(at("2026-12-02T09:00:00Z")));
    assert_eq!(ledger.compact(Duration::from_secs(24 * 3600)).unwrap(), 0);
}

#[test]
fn replay_ids_are_per_consumer_and_overwritten() {
    let (ledger, _) = ledger();
    assert_eq!(ledger.replay_id("jobs").unwrap(), None);
    ledger.set_replay_id("jobs", &[0, 1, 2]).unwrap();
    ledger.set_replay_id("jobs", &[0, 1, 3, 255]).unwrap();
    ledger.set_replay_id("other", &[9]).unwrap();
    assert_eq!(ledger.replay_id("jobs").unwrap(), Some(vec![0, 1, 3, 255]));
    assert_eq!(ledger.replay_id("other").unwrap(), Some(vec![9]));
}

#[test]
fn leases_exclude_other_holders_until_expiry() {
    let (ledger, clock) = ledger();
    let ttl = Duration::from_secs(30);
    assert!(ledger.acquire_lease("leader", "node-a", ttl).unwrap());
    assert!(!ledger.acquire_lease("leader", "node-b", ttl).unwrap());
    assert!(!ledger.release_lease("leader", "node-b").unwrap());
    clock.advance(Duration::from_secs(20));
    assert!(ledger.acquire_lease("leader", "node-a", ttl).unwrap()); // renewal
    clock.advance(Duration::from_secs(20));
    assert!(!ledger.acquire_lease("leader", "node-b", ttl).unwrap());
    clock.advance(Duration::from_secs(11));
    assert!(ledger.acquire_lease("leader", "node-b", ttl).unwrap()); // expired: taken over
    assert_eq!(ledger.lease("leader").unwrap().unwrap().holder, "node-b");
    assert!(ledger.release_lease("leader", "node-b").unwrap());
    assert_eq!(ledger.lease("leader").unwrap(), None);
}

#[test]
fn everything_survives_closing_and_reopening_the_sled_store() {
    let dir = tempfile::tempdir().unwrap();
    let (id, run, checkpoint) = {
        let (ledger, _) = ledger_on(Arc::new(SledStore::open(dir.path()).unwrap()));
        let id = open(&ledger, "2026-11-25T09:05:00Z");
        ledger.record_job(&id, "750A").unwrap();
        advance(&ledger, &id, RunState::CompletedEvent);
        ledger.update(&id, &Update::new().checkpoint(Checkpoint::new("fetch", json!({"data": {"a": 1}})))).unwrap();
        let checkpoint = ledger
            .update_progress(&id, "fetch", |p| {
                p.page_fetched(0, PageMark { locator: None, rows: 5, batches: 1 }, Some("LOC2".into()))
            })
            .unwrap();
        let done = open(&ledger, "2026-11-25T09:00:00Z");
        advance(&ledger, &done, RunState::Completed);
        ledger.set_replay_id("jobs", b"\x00\x07").unwrap();
        let run = ledger.transition(&id, Transition::Fail("bus down".into())).unwrap();
        (id, run, checkpoint)
        // The ledger and its store are dropped here, releasing the directory.
    };
    let (ledger, _) = ledger_on(Arc::new(SledStore::open(dir.path()).unwrap()));
    assert_eq!(ledger.get_run(&id).unwrap(), Some(run));
    assert_eq!(ledger.checkpoint(&id, "fetch").unwrap(), Some(checkpoint));
    assert_eq!(ledger.run_for_job("750A").unwrap(), Some(id.clone()));
    assert_eq!(ledger.watermark(FLOW).unwrap(), Some(at("2026-11-25T09:00:00Z").timestamp()));
    assert_eq!(ledger.last_tick(FLOW).unwrap(), Some(at("2026-11-25T09:05:00Z")));
    assert_eq!(ledger.replay_id("jobs").unwrap(), Some(b"\x00\x07".to_vec()));
    let resumable: Vec<_> = ledger.resumable_runs().unwrap().into_iter().map(|r| r.id().clone()).collect();
    assert_eq!(resumable, std::slice::from_ref(&id));
    assert_eq!(ledger.transition(&id, Transition::Retry).unwrap().state(), RunState::CompletedEvent);
}

#[test]
fn a_corrupt_run_record_is_an_error_naming_it() {
    let store = Arc::new(MemoryStore::new());
    let (ledger, _) = ledger_on(store.clone());
    let id = open(&ledger, "2026-11-25T09:05:00Z");
    let mut batch = Batch::new();
    batch.put(Tree::Runs, id.as_str(), b"\x00\x01garbage".to_vec());
    assert_eq!(store.commit(batch).unwrap(), Commit::Applied);

    let err = ledger.get_run(&id).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("tree runs") && msg.contains(id.as_str()), "{msg}");
    assert!(ledger.resumable_runs().is_err());
    assert!(ledger.transition(&id, Transition::Cancel("x".into())).is_err());
}
