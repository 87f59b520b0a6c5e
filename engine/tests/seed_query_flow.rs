//! The seed's query flow, unchanged, against the simulator: each tick creates a Bulk API job whose
//! SOQL window starts 24 hours back on the first run and an hour before the previous successful
//! run after that, as the seed's script says; a tick while the previous run is in flight opens
//! no run and creates no job.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bulkflow_engine::bus::registry::BusRegistry;
use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::flow::{LoadContext, load_dir};
use bulkflow_engine::run::{Ledger, RunFilter, RunState};
use bulkflow_engine::runtime::build::{BuildContext, build_flow};
use bulkflow_engine::runtime::engine::Engine;
use bulkflow_engine::salesforce::ClientSettings;
use bulkflow_engine::salesforce::Clients;
use bulkflow_engine::schedule::ManualClock;
use bulkflow_engine::store::MemoryStore;
use bulkflow_sim::SimConfig;
use chrono::{DateTime, DurationRound, Utc};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn soql_of(ledger: &Ledger, run: &bulkflow_engine::run::RunId) -> String {
    let cp = ledger.checkpoint(run, "job_intent").unwrap().expect("the intent is recorded before the POST");
    cp.input["soql"].as_str().unwrap().to_string()
}

fn window_start(soql: &str) -> DateTime<Utc> {
    let after = soql.split("LastModifiedDate >= ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_query_flow_creates_jobs_over_the_right_windows() {
    let sim =
        SimConfig::new().records([("Account", 200)]).job_latency(Duration::from_millis(50)).start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    sim.credentials().write_to(&root.path().join("etc/sfdc/credentials.json")).unwrap();
    let credentials = CredentialsRoot::new(Some(root.path().to_path_buf()));

    let env = |_: &str| None;
    let resources = repo().join("resources");
    let ctx = LoadContext { resources_dir: &resources, credentials: &credentials, env: &env };
    let loaded = load_dir(&repo().join("workflows/seed/salesforce_bulkapi_query_account.yaml"), &ctx).unwrap();
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);

    // A cron of */5: start the clock on a tick so the first run's time is predictable.
    let start = Utc::now().duration_trunc(chrono::Duration::minutes(5)).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), clock.clone()));
    let build = BuildContext {
        ledger: ledger.clone(),
        clock: clock.clone(),
        config: EngineConfig { resources_dir: resources.clone(), ..EngineConfig::default() },
        credentials: credentials.clone(),
        env: Arc::new(|_: &str| None),
        buses: Arc::new(BusRegistry::new(None, credentials.clone())),
        injector: Arc::default(),
        salesforce: Arc::new(Clients::new(credentials, "63.0", ClientSettings::default())),
    };
    let parts = loaded.flows.iter().map(|f| build_flow(f, &build).unwrap()).collect();
    let engine = Engine::start(parts, Default::default()).await;

    let runs_with_jobs = |n: usize| {
        let ledger = ledger.clone();
        async move {
            for _ in 0..400 {
                let runs = ledger.list_runs(&RunFilter::default()).unwrap();
                if runs.iter().filter(|r| r.job_id().is_some()).count() >= n {
                    let mut runs: Vec<_> = runs.into_iter().filter(|r| r.job_id().is_some()).collect();
                    runs.sort_by_key(|r| r.scheduled_at());
                    return runs;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("fewer than {n} runs created a job: {:#?}", ledger.list_runs(&RunFilter::default()).unwrap());
        }
    };
    let flow = "salesforce_bulkapi_query_account";
    let first = runs_with_jobs(1).await.remove(0);
    // Two ticks while the first run waits at `job_created`: both skipped, no second run, no
    // second job.
    for skipped in 1..=2 {
        clock.wait_for_sleepers(1).await;
        clock.advance(Duration::from_secs(300));
        for _ in 0..400 {
            if ledger.skipped_ticks().get(flow).is_some_and(|s| s.count >= skipped) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let skips = ledger.skipped_ticks()[flow].clone();
        assert_eq!(skips.count, skipped);
        assert_eq!(skips.last_reason, format!("run {} is `job_created`", first.id()));
    }
    let runs = ledger.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1, "no second run while the first is in flight: {runs:#?}");
    assert_eq!(sim.stats().jobs_created.get("Account").copied(), Some(1));

    // The first run ends (its results had no rows): the next tick opens the next run.
    ledger.results_started(first.id(), serde_json::json!({})).unwrap();
    let mark = bulkflow_engine::run::PageMark { locator: None, rows: 0, batches: 0 };
    ledger.page_fetched(first.id(), 0, mark, None).unwrap();
    assert_eq!(ledger.get_run(first.id()).unwrap().unwrap().state(), RunState::Written);
    clock.wait_for_sleepers(1).await;
    clock.advance(Duration::from_secs(300));
    let runs = runs_with_jobs(2).await;
    engine.stop(Duration::from_secs(5)).await;

    let (first, second) = (&runs[0], &runs[1]);
    assert_eq!(first.id().as_str(), format!("{flow}@{}", start.format("%Y-%m-%dT%H:%M:%SZ")));
    assert_eq!(second.scheduled_at(), start + chrono::Duration::minutes(15));
    assert_eq!(second.state(), RunState::JobCreated);
    assert_ne!(first.job_id(), second.job_id());

    // First run: 24 hours back from now (the script's timestamp_now()).
    let w1 = window_start(&soql_of(&ledger, runs[0].id()));
    let expected = Utc::now() - chrono::Duration::hours(24);
    assert!((w1 - expected).num_seconds().abs() < 30, "{w1} vs {expected}");
    // Second run: an hour before the first run's time, the watermark it left.
    assert_eq!(ledger.watermark(flow).unwrap(), Some(start.timestamp()));
    let w2 = window_start(&soql_of(&ledger, runs[1].id()));
    assert_eq!(w2, start - chrono::Duration::hours(1));
    // The jobs exist in the org, for Account.
    assert_eq!(sim.stats().jobs_created.get("Account").copied(), Some(2));
}
