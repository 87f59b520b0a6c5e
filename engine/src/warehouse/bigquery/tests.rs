//! The BigQuery warehouse against the simulator's BigQuery fake (the Storage Write API over gRPC,
//! tables read back with `tabledata.list` as a person would): the conformance suite, the values of
//! every schema type as BigQuery shows them, and the errors of a missing table or a fake that is
//! not there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bulkflow_sim::bigquery::BigQuery;
use serde_json::Value;
use tokio::sync::watch;

use super::{BigQueryWarehouse, TableRef};
use crate::runtime::processor::BoxFuture;
use crate::warehouse::conformance::{self, Fixture, conformance_tests};
use crate::warehouse::{ChangeType, Warehouse};

const TABLE: &str = "bulkflow-test.salesforce.account";

struct BqFixture {
    fake: BigQuery,
    warehouse: Arc<BigQueryWarehouse>,
    _stop: watch::Sender<bool>,
}

fn account() -> TableRef {
    TableRef { project: "bulkflow-test".into(), dataset: "salesforce".into(), table: "account".into() }
}

async fn fake() -> (BigQuery, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the BigQuery fake");
    let (stop, stopped) = watch::channel(false);
    (BigQuery::start(listener, stopped).expect("start the BigQuery fake"), stop)
}

async fn fixture() -> BqFixture {
    let (fake, stop) = fake().await;
    let schema = serde_json::to_string(&conformance::schema()).unwrap();
    fake.create_table(TABLE, &schema).expect("create the table");
    let warehouse = BigQueryWarehouse::emulator(&fake.addr().to_string(), account())
        .unwrap()
        .with_retry_for(Duration::from_secs(2));
    BqFixture { fake, warehouse: Arc::new(warehouse), _stop: stop }
}

/// `tabledata.list` and `tables.get` over REST: the rows as maps of column name → value.
async fn list(addr: std::net::SocketAddr) -> Vec<BTreeMap<String, Value>> {
    let base = format!("http://{addr}/bigquery/v2/projects/bulkflow-test/datasets/salesforce/tables/account");
    let table: Value = reqwest::get(&base).await.unwrap().json().await.unwrap();
    let names: Vec<String> =
        table["schema"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    let data: Value = reqwest::get(format!("{base}/data")).await.unwrap().json().await.unwrap();
    let rows = data["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(data["totalRows"], Value::String(rows.len().to_string()));
    rows.iter()
        .map(|r| names.iter().cloned().zip(r["f"].as_array().unwrap().iter().map(|c| c["v"].clone())).collect())
        .collect()
}

impl Fixture for BqFixture {
    fn warehouse(&self) -> Arc<dyn Warehouse> {
        self.warehouse.clone()
    }

    fn rows(&self) -> BoxFuture<'_, BTreeMap<String, Option<String>>> {
        Box::pin(async move {
            let rows = list(self.fake.addr()).await;
            let mut out = BTreeMap::new();
            for row in rows {
                let id = row["Id"].as_str().expect("Id is never null").to_string();
                let previous = out.insert(id.clone(), row["Name"].as_str().map(str::to_string));
                assert!(previous.is_none(), "`{id}` is in the table twice");
            }
            out
        })
    }

    fn table(&self) -> String {
        TABLE.into()
    }
}

conformance_tests!(fixture());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_schema_type_lands_as_bigquery_shows_it() {
    let f = fixture().await;
    f.warehouse.apply(&conformance::batch(&[("001A", "Acme"), ("001B", "Globex")]), ChangeType::Upsert).await.unwrap();
    let rows = list(f.fake.addr()).await;
    let text = |row: usize, column: &str| rows[row][column].as_str().map(str::to_string);
    assert_eq!(text(0, "Id").as_deref(), Some("001A"));
    assert_eq!(text(0, "AnnualRevenue").as_deref(), Some("0.0"));
    assert_eq!(text(1, "AnnualRevenue"), None);
    assert_eq!(text(0, "Amount__c").as_deref(), Some("1000.5"));
    assert_eq!(text(1, "NumberOfEmployees").as_deref(), Some("10"));
    assert_eq!(text(0, "IsActive__c").as_deref(), Some("true"));
    assert_eq!(text(0, "Founded__c").as_deref(), Some("2024-10-04"));
    assert_eq!(text(1, "LastModifiedDate").as_deref(), Some("1.764061500001E9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_refused_naming_it() {
    let (fake, _stop) = fake().await;
    let warehouse = BigQueryWarehouse::emulator(&fake.addr().to_string(), account()).unwrap();
    let err = warehouse.apply(&conformance::batch(&[("001A", "Acme")]), ChangeType::Upsert).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(text.contains(TABLE) && text.contains("NOT_FOUND"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_service_is_retried_then_retryable() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let warehouse =
        BigQueryWarehouse::emulator(&closed.to_string(), account()).unwrap().with_retry_for(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let err = warehouse.apply(&conformance::batch(&[("001A", "Acme")]), ChangeType::Upsert).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300), "it retried for a while first");
    assert!(err.to_string().contains(TABLE), "{err}");
}

/// A server that takes the connection and never answers (a half-open connection, a hung proxy):
/// each call ends at its deadline as retryable, instead of holding the batch, and every batch
/// behind it, for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_ends_each_call_at_its_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let warehouse = BigQueryWarehouse::emulator(&silent.to_string(), account())
        .unwrap()
        .with_retry_for(Duration::from_millis(500))
        .with_append_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        warehouse.apply(&conformance::batch(&[("001A", "Acme")]), ChangeType::Upsert),
    )
    .await
    .expect("the append ends");
    let err = answer.unwrap_err();
    assert!(err.is_retryable() && err.to_string().contains("no answer to AppendRows within"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    held.abort();
}

/// BigQuery's Storage Write API cannot remove the rows outside a set: a sweep part is answered
/// `Unsupported` (the writer says so loudly) and the table is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_is_unsupported_and_changes_nothing() {
    use crate::warehouse::sweep::{SweepOutcome, SweepPart};
    let f = fixture().await;
    f.warehouse.apply(&conformance::batch(&[("001A", "Acme"), ("001B", "Globex")]), ChangeType::Upsert).await.unwrap();
    let part = SweepPart { sweep: "run-1".into(), part: 0, parts: 1, before: chrono::Utc::now() };
    let outcome = f.warehouse.sweep(&conformance::batch(&[("001A", "")]), &part).await.unwrap();
    assert_eq!(outcome, SweepOutcome::Unsupported);
    assert_eq!(list(f.fake.addr()).await.len(), 2);
}
