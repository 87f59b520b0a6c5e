//! Runs as the engine would send them, for tests and the render bench (a real engine's records,
//! in the ledger's own JSON shape, without running an export).

use bulkflow_control_proto as pb;
use bulkflow_engine::run::RunState;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

/// A run of `flow` scheduled at `at`, now in `state` (through `failed` with `error` if given).
pub fn run(flow: &str, at: DateTime<Utc>, state: RunState, error: Option<&str>) -> pb::Run {
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let id = format!("{flow}@{}", at.to_rfc3339_opts(SecondsFormat::Secs, true));
    let failed = state == RunState::Failed;
    let history = if state == RunState::Scheduled {
        vec![]
    } else {
        vec![
            json!({"from": "scheduled", "to": state.as_str(), "at": ts(at + chrono::Duration::seconds(5)), "error": error}),
        ]
    };
    let record = json!({
        "id": id,
        "flow": flow,
        "state": state.as_str(),
        "failed_in": if failed { Some("scheduled") } else { None },
        "scheduled_at": ts(at),
        "job_id": (state != RunState::Scheduled).then(|| format!("750{:012}", at.timestamp())),
        "attempts": 1,
        "last_error": error,
        "total_batches": null,
        "created_at": ts(at),
        "updated_at": ts(at + chrono::Duration::seconds(5)),
        "history": history,
    });
    let progress = (state != RunState::Scheduled).then(|| pb::Progress {
        pages_fetched: 3,
        records: 41_234,
        batches_published: 12,
        batches_written: [("lake".to_owned(), 12), ("warehouse".to_owned(), 11)].into(),
    });
    pb::Run {
        record_json: record.to_string(),
        progress,
        window_start: Some(at.timestamp() - 3600),
        object: Some("Account".into()),
        waiting: None,
    }
}

/// `n` runs over three flows and every state, an hour apart, ending at `end`.
pub fn many(n: usize, end: DateTime<Utc>) -> pb::RunChanges {
    let flows = [
        "salesforce_bulkapi_query_account",
        "salesforce_bulkapi_query_contact",
        "salesforce_bulkapi_query_opportunity",
    ];
    let upserts = (0..n)
        .map(|i| {
            let state = RunState::ALL[i % RunState::ALL.len()];
            let error = (state == RunState::Failed).then_some("Bulk API job failed: InvalidBatch");
            run(flows[i % flows.len()], end - chrono::Duration::hours(i as i64), state, error)
        })
        .collect();
    pb::RunChanges { snapshot: true, upserts, removed: vec![] }
}
