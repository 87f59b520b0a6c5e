//! Runs as the engine would send them, for tests and the render bench (the control API's typed
//! run fields, without running an export).

use bulkflow_control_proto as pb;
use chrono::{DateTime, Utc};

use crate::view::STATES;

/// A run of `flow` scheduled at `at`, now in `state` (through `failed` with `error` if given).
pub fn run(flow: &str, at: DateTime<Utc>, state: &str, error: Option<&str>) -> pb::Run {
    let id = format!("{flow}@{}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let scheduled = state == "scheduled";
    let changed = (at + chrono::Duration::seconds(5)).timestamp_millis();
    let history = if scheduled {
        vec![]
    } else {
        vec![pb::StateChange {
            from: "scheduled".into(),
            to: state.into(),
            at_ms: changed,
            error: error.map(str::to_owned),
        }]
    };
    let progress = (!scheduled).then(|| pb::Progress {
        pages_fetched: 3,
        records: 41_234,
        batches_published: 12,
        batches_written: [("lake".to_owned(), 12), ("warehouse".to_owned(), 11)].into(),
    });
    pb::Run {
        progress,
        window_start: Some(at.timestamp() - 3600),
        object: Some("Account".into()),
        id,
        flow: flow.into(),
        state: state.into(),
        failed_in: (state == "failed").then(|| "scheduled".into()),
        scheduled_at: at.timestamp(),
        job_id: (!scheduled).then(|| format!("750{:012}", at.timestamp())),
        attempts: 1,
        last_error: error.map(str::to_owned),
        created_at_ms: at.timestamp_millis(),
        updated_at_ms: changed,
        history,
        ..Default::default()
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
            let state = STATES[i % STATES.len()];
            let error = (state == "failed").then_some("Bulk API job failed: InvalidBatch");
            run(flows[i % flows.len()], end - chrono::Duration::hours(i as i64), state, error)
        })
        .collect();
    pb::RunChanges { snapshot: true, upserts, removed: vec![] }
}
