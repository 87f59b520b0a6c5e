//! The PostgreSQL warehouse against a real server: the conformance suite, the values of every
//! schema type as PostgreSQL stores them, and a server restart in the middle of a stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use bulkflow_testkit::postgres::Postgres;

use super::PostgresWarehouse;
use super::sql::TableName;
use crate::runtime::processor::BoxFuture;
use crate::warehouse::conformance::{self, Fixture, conformance_tests};
use crate::warehouse::{ChangeType, Warehouse, WarehouseError};

struct PgFixture {
    url: String,
    warehouse: Arc<PostgresWarehouse>,
    pg: Postgres,
}

fn account() -> TableName {
    TableName { schema: Some("salesforce".into()), table: "account".into() }
}

async fn fixture() -> PgFixture {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.expect("start PostgreSQL");
    let url = pg.database("warehouse");
    let warehouse = Arc::new(PostgresWarehouse::new(url.clone(), account(), Some(conformance::schema())));
    PgFixture { url, warehouse, pg }
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// Rows as text, one query: `SELECT <columns as text> FROM salesforce.account ORDER BY "Id"`.
async fn select(url: &str, columns: &str) -> Vec<Vec<Option<String>>> {
    let client = client(url).await;
    let exists: Option<String> =
        client.query_one("SELECT to_regclass('salesforce.account')::text", &[]).await.expect("query").get(0);
    if exists.is_none() {
        return Vec::new();
    }
    let rows =
        client.query(&format!("SELECT {columns} FROM salesforce.account ORDER BY \"Id\""), &[]).await.expect("select");
    rows.iter().map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i)).collect()).collect()
}

impl Fixture for PgFixture {
    fn warehouse(&self) -> Arc<dyn Warehouse> {
        self.warehouse.clone()
    }

    fn rows(&self) -> BoxFuture<'_, BTreeMap<String, Option<String>>> {
        Box::pin(async move {
            let rows = select(&self.url, "\"Id\", \"Name\"").await;
            rows.into_iter().map(|r| (r[0].clone().expect("Id is never null"), r[1].clone())).collect()
        })
    }

    fn table(&self) -> String {
        "salesforce.account".into()
    }
}

conformance_tests!(fixture());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_schema_type_lands_as_its_postgres_type() {
    let f = fixture().await;
    f.warehouse.apply(&conformance::batch(&[("001A", "Acme"), ("001B", "Globex")]), ChangeType::Upsert).await.unwrap();
    let rows = select(
        &f.url,
        "\"Id\", \"AnnualRevenue\"::text, \"Amount__c\"::text, \"NumberOfEmployees\"::text, \"IsActive__c\"::text, \
         \"Founded__c\"::text, to_char(\"LastModifiedDate\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS')",
    )
    .await;
    let text = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(rows[0], text(&["001A", "0", "1000.50", "0", "true", "2024-10-04", "2025-11-25T09:05:00.000"]));
    let mut second = text(&["001B", "", "1000.51", "10", "false", "2024-10-05", "2025-11-25T09:05:00.001"]);
    second[1] = None;
    assert_eq!(rows[1], second);

    let types = client(&f.url)
        .await
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
             WHERE table_schema = 'salesforce' AND table_name = 'account' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {}", r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, String>(2)))
        .collect::<Vec<_>>();
    assert_eq!(
        types,
        [
            "Id text NO",
            "Name text YES",
            "AnnualRevenue double precision YES",
            "Amount__c numeric YES",
            "NumberOfEmployees bigint YES",
            "IsActive__c boolean YES",
            "Founded__c date YES",
            "LastModifiedDate timestamp with time zone YES",
            "IsDeleted boolean YES",
        ]
    );
}

/// `deletes: soft`: a deleted row stays, marked `_deleted` with the time the warehouse learnt it
/// (kept when the tombstone comes again, so a redelivery changes nothing); an upsert of the same
/// `Id` (Salesforce's undelete) clears the mark. The columns are added to a table created before
/// soft deletes were turned on; a table without them, not created by the writer, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_deletes_mark_rows_and_an_undelete_clears_the_mark() {
    use crate::warehouse::DeleteMode;
    let f = fixture().await;
    f.warehouse.apply(&conformance::batch(&[("001A", "Acme"), ("001B", "Globex")]), ChangeType::Upsert).await.unwrap();
    let soft =
        PostgresWarehouse::new(f.url.clone(), account(), Some(conformance::schema())).with_deletes(DeleteMode::Soft);
    let tombstone = conformance::marked_batch(&[("001A", "Acme", true), ("001Z", "never there", true)]);
    soft.apply(&tombstone, ChangeType::Auto).await.unwrap();
    let marks = || select(&f.url, "\"Id\", \"Name\", \"_deleted\"::text, \"_deleted_at\"::text");
    let first = marks().await;
    assert_eq!(first.len(), 2, "the row stays and no row is made for an unknown Id: {first:?}");
    assert_eq!(first[0][..3], [Some("001A".into()), Some("Acme".into()), Some("true".into())]);
    assert!(first[0][3].is_some(), "{first:?}");
    assert_eq!(first[1][2..], [Some("false".into()), None]);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    soft.apply(&tombstone, ChangeType::Auto).await.unwrap();
    assert_eq!(marks().await, first, "a tombstone applied again changes nothing");
    soft.apply(&conformance::batch(&[("001A", "Acme again")]), ChangeType::Auto).await.unwrap();
    assert_eq!(marks().await[0], [Some("001A".into()), Some("Acme again".into()), Some("false".into()), None]);

    let elsewhere = TableName { schema: Some("salesforce".into()), table: "plain".into() };
    client(&f.url)
        .await
        .batch_execute("CREATE TABLE salesforce.plain (\"Id\" text PRIMARY KEY, \"Name\" text)")
        .await
        .unwrap();
    let refused = PostgresWarehouse::new(f.url.clone(), elsewhere, None).with_deletes(DeleteMode::Soft);
    let only_name = conformance::batch(&[("001A", "Acme")]).project(&[0, 1]).unwrap();
    let err = refused.apply(&only_name, ChangeType::Auto).await.unwrap_err();
    assert!(!err.is_retryable() && err.to_string().contains("_deleted_at"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_without_create_table_is_a_clear_error() {
    let f = fixture().await;
    let warehouse = PostgresWarehouse::new(f.url.clone(), TableName { schema: None, table: "nowhere".into() }, None);
    let err = warehouse.apply(&conformance::batch(&[("001A", "Acme")]), ChangeType::Upsert).await.unwrap_err();
    assert!(matches!(err, WarehouseError::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("table `nowhere`: the table does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_retryable_and_the_error_hides_the_password() {
    let port = bulkflow_testkit::free_port();
    let url = format!("postgres://writer:s3cret-pw@127.0.0.1:{port}/warehouse");
    let mut warehouse = PostgresWarehouse::new(url, account(), None);
    warehouse.reconnect_for = std::time::Duration::from_millis(300);
    let err = warehouse.apply(&conformance::batch(&[("001A", "Acme")]), ChangeType::Upsert).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    assert!(err.to_string().starts_with("table `salesforce.account`: connecting"), "{err}");
}

/// A fast shutdown and start of the server while batches stream in: the batch in flight is tried
/// again on a new connection and every batch lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_stream_retries_the_batch_and_lands_it_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let f = fixture().await;
    let batch = |b: usize| {
        let ids: Vec<String> = (0..100).map(|r| format!("001B{b:03}R{r:03}")).collect();
        conformance::batch(&ids.iter().map(|id| (id.as_str(), "Acme")).collect::<Vec<_>>())
    };
    f.warehouse.apply(&batch(0), ChangeType::Upsert).await.unwrap();
    let restarted = AtomicBool::new(false);
    let mut applied = 1;
    std::thread::scope(|s| {
        s.spawn(|| {
            f.pg.restart();
            restarted.store(true, Ordering::SeqCst);
        });
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                // Stream until the restart is over, then five batches more.
                let mut after = 0;
                while after < 5 {
                    if restarted.load(Ordering::SeqCst) {
                        after += 1;
                    }
                    let b = batch(applied);
                    f.warehouse.apply(&b, ChangeType::Upsert).await.unwrap_or_else(|e| panic!("batch {applied}: {e}"));
                    // The batch in flight during the restart is also applied again here: a
                    // redelivery must not add rows.
                    f.warehouse.apply(&b, ChangeType::Upsert).await.unwrap();
                    applied += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
        });
    });
    let client = client(&f.url).await;
    let row = client.query_one("SELECT count(*), count(DISTINCT \"Id\") FROM salesforce.account", &[]).await.unwrap();
    let expected = 100 * applied as i64;
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (expected, expected));
}

/// Writers of several objects starting together all create their tables in one new schema; the
/// losers of the `CREATE SCHEMA` race must still create their table (the demo's three writers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_creating_tables_in_one_new_schema_at_once_all_get_their_table() {
    let f = fixture().await;
    let tables: Vec<String> = (0..6).map(|i| format!("object_{i}")).collect();
    let writes = tables.iter().map(|t| {
        let name = TableName { schema: Some("racing".into()), table: t.clone() };
        let warehouse = PostgresWarehouse::new(f.url.clone(), name, Some(conformance::schema()));
        async move { warehouse.apply(&conformance::batch(&[("001A", "Acme")]), ChangeType::Upsert).await }
    });
    for result in futures_util::future::join_all(writes).await {
        result.unwrap();
    }
    let client = client(&f.url).await;
    for t in &tables {
        let n: i64 = client.query_one(&format!("SELECT count(*) FROM racing.{t}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 1, "{t}");
    }
}

/// A sweep keeps its parts (a part twice counts once) and, when the last one comes, removes the
/// rows no part names, except rows changed since the live set was read; a part of a sweep already
/// done changes nothing. With `deletes: soft` the rows are marked instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_removes_the_rows_no_part_names_once_every_part_is_in() {
    use crate::warehouse::DeleteMode;
    use crate::warehouse::sweep::{SweepOutcome, SweepPart};
    let f = fixture().await;
    // `LastModifiedDate` is 2025-11-25T09:05:00Z plus the row's index in milliseconds.
    let rows = [("001A", "Acme"), ("001B", "Globex"), ("001C", "Initech"), ("001D", "Umbrella"), ("001E", "Hooli")];
    f.warehouse.apply(&conformance::batch(&rows), ChangeType::Upsert).await.unwrap();
    let base: chrono::DateTime<chrono::Utc> = "2025-11-25T09:05:00Z".parse().unwrap();
    let part = |sweep: &str, part: u64, parts: u64, before| SweepPart { sweep: sweep.into(), part, parts, before };
    let ids = |ids: &[&str]| conformance::batch(&ids.iter().map(|id| (*id, "")).collect::<Vec<_>>());
    let names =
        || async { select(&f.url, "\"Id\"").await.into_iter().map(|r| r[0].clone().unwrap()).collect::<Vec<_>>() };

    let before = base + chrono::Duration::milliseconds(3);
    let first = part("run-1", 0, 2, before);
    assert_eq!(f.warehouse.sweep(&ids(&["001A"]), &first).await.unwrap(), SweepOutcome::Waiting { have: 1 });
    assert_eq!(f.warehouse.sweep(&ids(&["001A"]), &first).await.unwrap(), SweepOutcome::Waiting { have: 1 });
    assert_eq!(names().await.len(), 5, "nothing goes before every part is in");
    let last = part("run-1", 1, 2, before);
    assert_eq!(f.warehouse.sweep(&ids(&["001B"]), &last).await.unwrap(), SweepOutcome::Swept { removed: 1 });
    assert_eq!(names().await, ["001A", "001B", "001D", "001E"], "001C went; 001D and 001E changed since");
    assert_eq!(f.warehouse.sweep(&ids(&["001A"]), &first).await.unwrap(), SweepOutcome::AlreadySwept);
    assert_eq!(names().await.len(), 4);

    let soft =
        PostgresWarehouse::new(f.url.clone(), account(), Some(conformance::schema())).with_deletes(DeleteMode::Soft);
    let after_all = base + chrono::Duration::days(1);
    let outcome = soft.sweep(&ids(&["001A"]), &part("run-2", 0, 1, after_all)).await.unwrap();
    assert_eq!(outcome, SweepOutcome::Swept { removed: 3 });
    let marks = select(&f.url, "\"Id\", \"_deleted\"::text").await;
    let marked: Vec<_> = marks.iter().map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap())).collect();
    let want = [("001A", "false"), ("001B", "true"), ("001D", "true"), ("001E", "true")];
    assert_eq!(marked, want.map(|(a, b)| (a.to_string(), b.to_string())));

    let err = f.warehouse.sweep(&conformance::batch(&[]).project(&[1]).unwrap(), &part("run-3", 0, 1, after_all)).await;
    assert!(err.unwrap_err().to_string().contains("`Id`"), "a part without Ids is refused");
}

/// A server that takes TLS connections only, with a certificate of a CA made for the test: a
/// writer trusting that CA (through `sslrootcert`, or the engine's `tls_ca_file`) lands its batch
/// over TLS; one that does not is refused by its own check, whatever `sslmode` says — none turns
/// verification off — and `disable` is refused by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_against_sslrootcert_or_the_engines_ca_file() {
    use crate::tls::Trust;

    let pki = bulkflow_testkit::tls::Pki::new();
    let f = fixture().await;
    tokio::task::block_in_place(|| f.pg.require_tls(&pki.server_cert(), &pki.server_key()));
    let ca = pki.ca().display().to_string();
    let write = |query: String, trust: Trust, id: &'static str| {
        let url = format!("{}?{query}", f.url);
        async move {
            let mut warehouse = PostgresWarehouse::new(url, account(), Some(conformance::schema())).with_trust(trust);
            warehouse.reconnect_for = std::time::Duration::from_millis(300);
            warehouse.apply(&conformance::batch(&[(id, "Acme")]), ChangeType::Upsert).await
        }
    };

    write(format!("sslmode=verify-full&sslrootcert={ca}"), Trust::default(), "001A").await.unwrap();
    let trusting = Trust::load(Some(&pki.ca())).unwrap();
    write("sslmode=require".into(), trusting.clone(), "001B").await.unwrap();

    for (query, trust) in [
        ("sslmode=require".to_string(), Trust::default()),
        (String::new(), Trust::default()),
        (format!("sslmode=verify-full&sslrootcert={}", pki.other_ca().display()), Trust::default()),
    ] {
        let err = write(query.clone(), trust, "001C").await.unwrap_err().to_string();
        assert!(err.to_lowercase().contains("certificate"), "`{query}` without the CA: {err}");
    }
    let err = write("sslmode=disable".into(), trusting.clone(), "001D").await.unwrap_err().to_string();
    assert!(err.contains("no encryption"), "plain TCP to a TLS-only server: {err}");

    // What landed, read over TLS: the two trusted writes, on encrypted sessions.
    let prepared = super::tls::prepare(&format!("{}?sslmode=verify-full", f.url), &trusting).unwrap();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(prepared.tls.unwrap());
    let (client, connection) = tokio_postgres::connect(&prepared.url, tls).await.unwrap();
    tokio::spawn(connection);
    let ids: Vec<String> = client
        .query("SELECT \"Id\" FROM salesforce.account ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, ["001A", "001B"]);
    let ssl: bool =
        client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0);
    assert!(ssl);
}
