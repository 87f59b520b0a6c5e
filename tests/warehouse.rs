//! Acceptance for issue #9, PostgreSQL: the repository's writer flow with `postgres_write` in place
//! of BigQuery (`workflows/postgres/`, loaded unchanged) fed Bulk-shaped batches — every column
//! text, ids `<job>-p<page>-b<index>`, one batch delivered twice — writes Parquet and upserts into
//! a real PostgreSQL in parallel from one cast: one row per `Id`, in the schema's types.
//!
//! The flow's source is the bus subscriber; as in `writers.rs`, the test builds the flow's graph
//! and feeds it as the subscriber would.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulkflow_engine::event::Event;
use bulkflow_engine::runtime::build::EnvLookup;
use bulkflow_engine::runtime::token::Outcome;
use bulkflow_testkit::postgres::Postgres;
use serde_json::json;

#[path = "support/account_page.rs"]
mod account_page;
#[path = "support/flow_feed.rs"]
mod flow_feed;

use account_page::{JOB, bulk_batch};
use flow_feed::repo;
const FLOW: &str = "workflows/postgres/salesforce_bulkapi_writer_account_postgres.yaml";

/// The repository's flow file, unchanged, fed `events` as its subscriber would.
async fn run_flow(credentials_root: &Path, env: EnvLookup, events: Vec<Event>) -> Vec<(String, Outcome)> {
    let yaml = std::fs::read_to_string(repo().join(FLOW)).unwrap();
    flow_feed::run_flow(FLOW, &yaml, credentials_root, env, events).await
}

async fn query(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_writer_flow_lands_parquet_and_one_row_per_id() {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let url = pg.database("warehouse");
    let root = tempfile::tempdir().unwrap();
    let lake = root.path().join("lake");
    let (url_env, lake_env) = (url.clone(), lake.display().to_string());
    let env: EnvLookup = Arc::new(move |name| match name {
        "WAREHOUSE_URL" => Some(url_env.clone()),
        "GCS_BUCKET_PATH" => Some(lake_env.clone()),
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
    assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Completed), "{outcomes:?}");
    assert_eq!(outcomes.len(), 4);

    let files = parquet_files(&lake);
    let names: Vec<String> = files.iter().map(|f| f.strip_prefix(&lake).unwrap().display().to_string()).collect();
    assert_eq!(
        names,
        [
            format!("salesforce/account/EventDate=2026-11-25/{JOB}-p0-b0.parquet"),
            format!("salesforce/account/EventDate=2026-11-25/{JOB}-p1-b0.parquet"),
        ]
    );

    let counts = query(&url, "SELECT count(*), count(DISTINCT \"Id\") FROM salesforce.account").await;
    assert_eq!((counts[0].get::<_, i64>(0), counts[0].get::<_, i64>(1)), (1400, 1400));
    let rows = query(
        &url,
        "SELECT \"Id\", \"Name\", \"Type\", \"AnnualRevenue\", \
         to_char(\"LastModifiedDate\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') \
         FROM salesforce.account WHERE \"Id\" IN ('001W00000000003', '001W10000000005') ORDER BY \"Id\"",
    )
    .await;
    let row = |i: usize| {
        let r = &rows[i];
        (
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, Option<String>>(2),
            r.get::<_, Option<f64>>(3),
            r.get::<_, String>(4),
        )
    };
    assert_eq!(
        row(0),
        ("001W00000000003".into(), "Account 3 (renamed)".into(), None, Some(3.25), "2026-11-25 08:03:00".into())
    );
    assert_eq!(
        row(1),
        ("001W10000000005".into(), "Account 5".into(), Some("Customer".into()), None, "2026-11-25 08:05:00".into())
    );
}

/// With `WAREHOUSE_URL` unset, the URL comes from the credentials file under the credentials root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_comes_from_the_credentials_file_when_the_flow_gives_none() {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let url = pg.database("warehouse");
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/postgres")).unwrap();
    std::fs::write(root.path().join("etc/postgres/credentials.json"), json!({ "url": url }).to_string()).unwrap();
    let lake = root.path().join("lake").display().to_string();
    let env: EnvLookup = Arc::new(move |name| (name == "GCS_BUCKET_PATH").then(|| lake.clone()));
    let outcomes = run_flow(root.path(), env, vec![bulk_batch(0, 10, "")]).await;
    assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Completed), "{outcomes:?}");
    let counts = query(&url, "SELECT count(*) FROM salesforce.account").await;
    assert_eq!(counts[0].get::<_, i64>(0), 10);

    // A malformed file fails the batch, naming the file and never its contents.
    std::fs::write(
        root.path().join("etc/postgres/credentials.json"),
        r#"{"url": "postgres://u:hunter2@x/db", "pw": 1}"#,
    )
    .unwrap();
    let lake = root.path().join("lake").display().to_string();
    let env: EnvLookup = Arc::new(move |name| (name == "GCS_BUCKET_PATH").then(|| lake.clone()));
    let outcomes = run_flow(root.path(), env, vec![bulk_batch(1, 10, "")]).await;
    let Outcome::Failed { task, error } = &outcomes[0].1 else { panic!("{outcomes:?}") };
    assert_eq!(task, "write_to_data_warehouse");
    assert!(error.contains("etc/postgres/credentials.json") && !error.contains("hunter2"), "{error}");
}
