//! Acceptance for issue #9, BigQuery: the seed's writer flow, loaded unchanged from
//! `workflows/seed/`, with `GCS_BUCKET_PATH` a local directory, a service-account key at the
//! credentials root's `/etc/gcp/credentials.json` and `BIGQUERY_EMULATOR_HOST` at the simulator's
//! BigQuery fake, fed Bulk-shaped batches (every column text, ids `<job>-p<page>-b<index>`, one
//! batch delivered twice): batches fan out to Parquet and BigQuery in parallel from one
//! `cast_schema`, and `tabledata.list` returns one row per `Id`.
//!
//! The flow's source is the bus subscriber; as in `warehouse.rs`, the test builds the flow's graph
//! and feeds it as the subscriber would.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulkflow_engine::event::Event;
use bulkflow_engine::runtime::build::EnvLookup;
use bulkflow_engine::runtime::token::Outcome;
use bulkflow_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

#[path = "support/account_page.rs"]
mod account_page;
#[path = "support/flow_feed.rs"]
mod flow_feed;

use account_page::{JOB, bulk_batch};
use flow_feed::repo;
const FLOW: &str = "workflows/seed/salesforce_bulkapi_writer_account.yaml";
const PROJECT: &str = "bulkflow-demo";

/// The repository's flow file, unchanged, fed `events` as its subscriber would.
async fn run_flow(credentials_root: &Path, env: EnvLookup, events: Vec<Event>) -> Vec<(String, Outcome)> {
    let yaml = std::fs::read_to_string(repo().join(FLOW)).unwrap();
    flow_feed::run_flow(FLOW, &yaml, credentials_root, env, events).await
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(parquet_files(&path)) } else { out.push(path) }
    }
    out.sort();
    out
}

/// A service-account key file as Google issues them (the emulator never sees it).
fn write_service_account(root: &Path) {
    let dir = root.join("etc/gcp");
    std::fs::create_dir_all(&dir).unwrap();
    let key = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": "-----BEGIN PRIVATE KEY-----\nunused by the emulator\n-----END PRIVATE KEY-----\n",
        "client_email": "bulkflow@bulkflow-demo.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token"
    });
    std::fs::write(dir.join("credentials.json"), key.to_string()).unwrap();
}

/// `tabledata.list`, every page, as maps of column name → value (names from `tables.get`).
async fn tabledata(addr: std::net::SocketAddr, table: &str) -> Vec<serde_json::Map<String, Value>> {
    let base = format!("http://{addr}/bigquery/v2/projects/{PROJECT}/datasets/salesforce/tables/{table}");
    let resource: Value = reqwest::get(&base).await.unwrap().json().await.unwrap();
    let names: Vec<String> = resource["schema"]["fields"]
        .as_array()
        .expect("tables.get has the schema")
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{base}/data?maxResults=500");
        if let Some(t) = &token {
            url.push_str(&format!("&pageToken={t}"));
        }
        let page: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        for row in page["rows"].as_array().into_iter().flatten() {
            let cells = row["f"].as_array().unwrap().iter().map(|c| c["v"].clone());
            rows.push(names.iter().cloned().zip(cells).collect());
        }
        match page["pageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => {
                assert_eq!(page["totalRows"], Value::String(rows.len().to_string()));
                return rows;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_writer_flow_lands_parquet_and_one_bigquery_row_per_id() {
    let schema = std::fs::read_to_string(repo().join("resources/salesforce/schema_account.json")).unwrap();
    let sim = Simulator::start(
        SimConfig::new().records([("Account", 10)]).bigquery_table(format!("{PROJECT}.salesforce.account"), schema),
    )
    .await
    .expect("start the simulator with its BigQuery fake");
    let root = tempfile::tempdir().unwrap();
    write_service_account(root.path());
    let lake = root.path().join("lake");
    let (host, lake_env) = (sim.bigquery().addr().to_string(), lake.display().to_string());
    let env: EnvLookup = Arc::new(move |name| match name {
        "BIGQUERY_EMULATOR_HOST" => Some(host.clone()),
        "GCS_BUCKET_PATH" => Some(lake_env.clone()),
        "GCP_PROJECT_ID" => Some(PROJECT.into()),
        _ => None,
    });
    // Page 0 twice (a redelivery), page 1, then page 0 again with changed names (a later run).
    let events = vec![
        bulk_batch(0, 1000, ""),
        bulk_batch(0, 1000, ""),
        bulk_batch(1, 400, ""),
        bulk_batch(0, 1000, " (renamed)"),
    ];
    let outcomes = run_flow(root.path(), env, events).await;
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Completed), "{outcomes:?}");

    let files = parquet_files(&lake);
    let names: Vec<String> = files.iter().map(|f| f.strip_prefix(&lake).unwrap().display().to_string()).collect();
    assert_eq!(
        names,
        [
            format!("salesforce/account/EventDate=2026-11-25/{JOB}-p0-b0.parquet"),
            format!("salesforce/account/EventDate=2026-11-25/{JOB}-p1-b0.parquet"),
        ]
    );

    let rows = tabledata(sim.bigquery().addr(), "account").await;
    assert_eq!(rows.len(), 1400);
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1400, "one row per Id");
    let row = |id: &str| rows.iter().find(|r| r["Id"] == id).unwrap_or_else(|| panic!("no row {id}"));
    let r = row("001W00000000003");
    assert_eq!(r["Name"], "Account 3 (renamed)");
    assert_eq!(r["Type"], Value::Null);
    assert_eq!(r["AnnualRevenue"], "3.25");
    assert_eq!(r["LastModifiedDate"], "1.79559378E9", "2026-11-25T08:03:00Z in seconds");
    let r = row("001W10000000005");
    assert_eq!(r["Name"], "Account 5");
    assert_eq!(r["Type"], "Customer");
    assert_eq!(r["AnnualRevenue"], Value::Null);
    sim.shutdown().await.unwrap();
}

/// A table the fake does not have fails the batch naming the table; the Parquet branch still lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bigquery_table_fails_the_batch_naming_it() {
    let sim = Simulator::start(SimConfig::new().records([("Account", 10)])).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    write_service_account(root.path());
    let lake = root.path().join("lake");
    let (host, lake_env) = (sim.bigquery().addr().to_string(), lake.display().to_string());
    let env: EnvLookup = Arc::new(move |name| match name {
        "BIGQUERY_EMULATOR_HOST" => Some(host.clone()),
        "GCS_BUCKET_PATH" => Some(lake_env.clone()),
        "GCP_PROJECT_ID" => Some(PROJECT.into()),
        _ => None,
    });
    let outcomes = run_flow(root.path(), env, vec![bulk_batch(0, 10, "")]).await;
    let Outcome::Failed { task, error } = &outcomes[0].1 else { panic!("{outcomes:?}") };
    assert_eq!(task, "write_to_data_warehouse");
    assert!(error.contains("bulkflow-demo.salesforce.account") && error.contains("NOT_FOUND"), "{error}");
    assert_eq!(parquet_files(&lake).len(), 1);
    sim.shutdown().await.unwrap();
}
