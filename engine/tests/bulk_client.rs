//! The Bulk API 2.0 client against the simulator: every OAuth flow, every job operation, every
//! fault, asserting with the simulator's request counters what the client did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, StringArray};
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::salesforce::bulk::{self, CreateJob, JobInfo};
use bulkflow_engine::salesforce::job_create;
use bulkflow_engine::salesforce::results::ResultsReader;
use bulkflow_engine::salesforce::{ClientSettings, Clients, Limits, RetryPolicy, SalesforceClient, SalesforceError};
use bulkflow_engine::tasks::salesforce_bulkapi_query_job::config::{ColumnDelimiter, LineEnding, QueryOperation};
use bulkflow_sim::{FaultConfig, SimConfig, Simulator};
use serde_json::json;

const SOQL: &str = "SELECT Id, Name, LastModifiedDate FROM Account ORDER BY Id";

struct Org {
    sim: Simulator,
    dir: tempfile::TempDir,
}

async fn org(accounts: usize, page: usize) -> Org {
    let sim = SimConfig::new()
        .records([("Account", accounts)])
        .job_latency(Duration::from_millis(50))
        .max_page_records(page)
        .start()
        .await
        .unwrap();
    Org { sim, dir: tempfile::tempdir().unwrap() }
}

fn fast_retries() -> ClientSettings {
    ClientSettings {
        retry: RetryPolicy { attempts: 4, initial: Duration::from_millis(20), max: Duration::from_millis(100) },
        limits: Limits::default(),
        ..ClientSettings::default()
    }
}

impl Org {
    /// A credentials file for one OAuth flow, under a credentials root, as a deployment has it.
    fn client(&self, flow: &str) -> Arc<SalesforceClient> {
        self.client_with(flow, Limits::default())
    }

    fn client_with(&self, flow: &str, limits: Limits) -> Arc<SalesforceClient> {
        let c = self.sim.credentials();
        let etc = self.dir.path().join("etc/sfdc");
        std::fs::create_dir_all(&etc).unwrap();
        let key = etc.join("jwt.pem");
        std::fs::write(&key, &c.private_key_pem).unwrap();
        let body = match flow {
            "jwt" => {
                json!({"client_id": c.client_id, "username": c.username, "login_url": c.login_url, "private_key_path": "jwt.pem"})
            }
            "password" => {
                json!({"client_id": c.client_id, "client_secret": c.client_secret, "username": c.username, "password": c.password, "login_url": c.login_url})
            }
            _ => json!({"client_id": c.client_id, "client_secret": c.client_secret, "login_url": c.login_url}),
        };
        let name = format!("/etc/sfdc/{flow}.json");
        std::fs::write(self.dir.path().join(&name[1..]), body.to_string()).unwrap();
        let settings = ClientSettings { limits, ..fast_retries() };
        let clients = Clients::new(CredentialsRoot::new(Some(self.dir.path().to_path_buf())), "63.0", settings);
        clients.get(Path::new(&name)).unwrap()
    }

    fn stats(&self) -> bulkflow_sim::StatsSnapshot {
        self.sim.stats()
    }
}

async fn create(client: &SalesforceClient, soql: &str) -> Result<JobInfo, SalesforceError> {
    job_create::create_job_unrecorded(
        client,
        &CreateJob {
            soql,
            operation: QueryOperation::Query,
            column_delimiter: ColumnDelimiter::Comma,
            line_ending: LineEnding::Lf,
        },
    )
    .await
}

async fn completed(client: &SalesforceClient, id: &str) -> Result<JobInfo, SalesforceError> {
    for _ in 0..400 {
        let job = bulk::get_job(client, id).await?;
        if job.check_finished()? {
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} did not complete");
}

/// Every Id of a job's results, in order, and the pages read.
async fn read_all(
    client: Arc<SalesforceClient>,
    job: JobInfo,
    batch: usize,
) -> Result<(Vec<String>, u64), SalesforceError> {
    let mut reader = ResultsReader::new(client, job, batch, None, None);
    let mut ids = Vec::new();
    let mut pages = 0;
    while let Some(page) = reader.next_page().await? {
        pages += 1;
        for b in &page.batches {
            assert!(b.num_rows() <= batch);
            let col = b.column_by_name("Id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend((0..col.len()).map(|i| col.value(i).to_string()));
        }
    }
    Ok((ids, pages))
}

fn sorted_ids(sim: &Simulator) -> Vec<String> {
    let mut ids = sim.ids("Account");
    ids.sort();
    ids
}

#[tokio::test]
async fn each_oauth_flow_logs_in_and_exports() {
    let org = org(120, 50).await;
    for flow in ["client_credentials", "password", "jwt"] {
        let client = org.client(flow);
        let job = create(&client, SOQL).await.unwrap();
        let job = completed(&client, &job.id).await.unwrap();
        let (ids, pages) = read_all(client, job, 40).await.unwrap();
        assert_eq!(ids, sorted_ids(&org.sim), "{flow}");
        assert_eq!(pages, 3, "{flow}");
    }
}

#[tokio::test]
async fn an_expired_token_mid_export_logs_in_once_more() {
    let org = org(100, 25).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let mut reader = ResultsReader::new(client.clone(), job, 1000, None, None);
    let mut ids = Vec::new();
    let mut page_no = 0;
    while let Some(page) = reader.next_page().await.unwrap() {
        for b in &page.batches {
            let col = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend((0..col.len()).map(|i| col.value(i).to_string()));
        }
        page_no += 1;
        if page_no == 2 {
            org.sim.set_faults(FaultConfig { revoke_tokens: true, ..Default::default() });
        }
    }
    assert_eq!(ids, sorted_ids(&org.sim));
    let logins = org.stats().requests.get("oauth_token").copied().unwrap_or_default();
    assert_eq!(logins, 2, "{:?}", org.stats().requests);
}

#[tokio::test]
async fn every_job_operation() {
    let org = SimConfig::new().records([("Account", 30)]).job_latency(Duration::from_secs(30)).start().await.unwrap();
    let org = Org { sim: org, dir: tempfile::tempdir().unwrap() };
    let client = org.client("client_credentials");
    let slow = create(&client, SOQL).await.unwrap();
    assert_eq!(slow.raw["object"], "Account");
    assert!(slow.id.starts_with("750") && slow.id.len() == 18, "{}", slow.id);
    let got = bulk::get_job(&client, &slow.id).await.unwrap();
    assert_eq!(got.id, slow.id);
    assert!(!got.check_finished().unwrap());
    // Deleting a running job is refused; aborting it works; then it can be deleted.
    let refused = bulk::delete_job(&client, &slow.id).await.unwrap_err();
    assert!(matches!(refused, SalesforceError::Api { status: 400, .. }), "{refused}");
    let aborted = bulk::abort_job(&client, &slow.id).await.unwrap();
    assert_eq!(aborted.state, "Aborted");
    assert!(matches!(aborted.check_finished(), Err(SalesforceError::JobAborted { .. })));
    let listed = bulk::list_jobs(&client).await.unwrap();
    assert!(listed.iter().any(|j| j.id == slow.id));
    bulk::delete_job(&client, &slow.id).await.unwrap();
    let gone = bulk::get_job(&client, &slow.id).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    // A bad query is the API's error, not retried.
    let bad = create(&client, "SELECT Nope FROM Account").await.unwrap_err();
    assert!(matches!(&bad, SalesforceError::Api { status: 400, code, .. } if code == "INVALID_FIELD"), "{bad}");
}

#[tokio::test]
async fn a_job_list_that_pages_for_ever_is_an_error_not_a_hang() {
    let org = SimConfig::new().records([("Account", 10)]).list_page_size(2).start().await.unwrap();
    let org = Org { sim: org, dir: tempfile::tempdir().unwrap() };
    let client = org.client("client_credentials");
    for _ in 0..5 {
        create(&client, SOQL).await.unwrap();
    }
    assert_eq!(bulk::list_jobs(&client).await.unwrap().len(), 5, "3 pages of 2, followed to the end");
    org.sim.set_faults(FaultConfig { job_list_loop: true, ..Default::default() });
    let listed = tokio::time::timeout(Duration::from_secs(30), bulk::list_jobs(&client)).await;
    let e = listed.expect("the list ends").unwrap_err();
    assert!(matches!(&e, SalesforceError::Protocol { .. }) && e.to_string().contains("loops"), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(org.stats().requests.get("job_list").copied(), Some(3 + 2), "one page, then the same page once");
    org.sim.set_faults(FaultConfig::default());
    let capped = org.client_with("client_credentials", Limits { max_job_list_pages: 2, ..Limits::default() });
    let e = bulk::list_jobs(&capped).await.unwrap_err();
    assert!(e.to_string().contains("goes on past 2 pages (salesforce_max_job_list_pages)"), "{e}");
}

#[tokio::test]
async fn an_error_answer_of_a_gigabyte_is_read_only_to_its_cap() {
    let org = org(20, 20).await;
    let client = org.client("client_credentials");
    let job = create(&client, SOQL).await.unwrap();
    org.sim.set_faults(FaultConfig {
        error_5xx: 1,
        huge_error_body_bytes: 1 << 30,
        endpoints: vec!["job_get".into()],
        ..Default::default()
    });
    let got = tokio::time::timeout(Duration::from_secs(30), bulk::get_job(&client, &job.id)).await;
    assert_eq!(got.expect("answered").unwrap().id, job.id, "the 503 was retried");
    // 64 KiB read, plus what the sockets buffered before the connection was dropped; without
    // the cap all 16,384 chunks go out.
    let chunks = org.stats().faults_injected.get("error_body_chunk").copied().unwrap_or_default();
    assert!((1..512).contains(&chunks), "{chunks} chunks of 64 KiB sent");
}

#[tokio::test]
async fn a_page_holding_fewer_records_than_it_announces_is_fetched_again() {
    let org = org(60, 20).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    org.sim.set_faults(FaultConfig { miscount_pages: 1, ..Default::default() });
    let (ids, pages) = read_all(client, job.clone(), 100).await.unwrap();
    assert_eq!((ids, pages), (sorted_ids(&org.sim), 3));
    let per_locator: BTreeMap<String, u64> = org.stats().requests_per_locator[&job.id].clone();
    assert_eq!(per_locator.get("(first)"), Some(&2), "the miscounted first page read again: {per_locator:?}");
}

#[tokio::test]
async fn a_last_page_before_the_jobs_record_count_is_an_error_not_a_short_export() {
    let org = org(60, 20).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    org.sim.set_faults(FaultConfig { drop_locators: 1, ..Default::default() });
    let e = read_all(client.clone(), job.clone(), 100).await.unwrap_err();
    assert!(matches!(&e, SalesforceError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("after 20 records; the job processed 60"), "{e}");
    assert!(e.is_retryable(), "reading again from the start (or the checkpoint) may work");
    let (ids, _) = read_all(client, job, 100).await.unwrap();
    assert_eq!(ids, sorted_ids(&org.sim));
}

#[tokio::test]
async fn a_burst_of_5xx_is_retried() {
    let org = org(60, 20).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    org.sim.set_faults(FaultConfig { error_5xx: 2, error_5xx_status: 503, ..Default::default() });
    let (ids, _) = read_all(client, job, 100).await.unwrap();
    assert_eq!(ids, sorted_ids(&org.sim));
    assert_eq!(org.stats().faults_injected.values().sum::<u64>(), 2);
}

#[tokio::test]
async fn the_request_limit_fails_at_once_without_a_retry_storm() {
    let org = org(10, 20).await;
    let client = org.client("client_credentials");
    client.session().await.unwrap();
    org.sim.set_faults(FaultConfig { request_limit: 10, ..Default::default() });
    let before: u64 = org.stats().requests.values().sum();
    let err = create(&client, SOQL).await.unwrap_err();
    assert!(matches!(err, SalesforceError::RequestLimit { .. }), "{err}");
    assert!(err.to_string().contains("daily API limit"), "{err}");
    let after: u64 = org.stats().requests.values().sum();
    assert_eq!(after - before, 1, "one request, no retries");
}

#[tokio::test]
async fn a_cut_in_page_k_refetches_page_k_only() {
    let org = org(100, 20).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let mut reader = ResultsReader::new(client.clone(), job.clone(), 100, None, None);
    let mut ids = Vec::new();
    let mut n = 0;
    while let Some(page) = reader.next_page().await.unwrap() {
        for b in &page.batches {
            let col = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend((0..col.len()).map(|i| col.value(i).to_string()));
        }
        n += 1;
        if n == 2 {
            // Page 3 (already requested by the prefetch) is cut part-way through its body.
            org.sim.set_faults(FaultConfig { cut_results: 1, cut_after_bytes: 300, ..Default::default() });
        }
    }
    assert_eq!(ids, sorted_ids(&org.sim));
    let per_locator: BTreeMap<String, u64> = org.stats().requests_per_locator[&job.id].clone();
    let twice: Vec<_> = per_locator.iter().filter(|(_, n)| **n == 2).collect();
    assert_eq!(twice.len(), 1, "exactly one page fetched twice: {per_locator:?}");
    assert!(per_locator.values().all(|n| *n <= 2), "{per_locator:?}");
    assert_eq!(per_locator.len(), 5);
}

#[tokio::test]
async fn a_failed_job_reports_salesforces_message() {
    let org = org(10, 20).await;
    let client = org.client("client_credentials");
    org.sim.set_faults(FaultConfig {
        fail_jobs: 2,
        failed_job_message: Some("InvalidBatch: too big".into()),
        ..Default::default()
    });
    let job = create(&client, SOQL).await.unwrap();
    let err = completed(&client, &job.id).await.unwrap_err();
    assert_eq!(err.to_string(), format!("Salesforce job {} failed: InvalidBatch: too big", job.id));
    org.sim.set_faults(FaultConfig { fail_jobs: 1, failed_job_message: None, ..Default::default() });
    let job = create(&client, SOQL).await.unwrap();
    let err = completed(&client, &job.id).await.unwrap_err();
    assert!(err.to_string().contains("no errorMessage given"), "{err}");
}

#[tokio::test]
async fn non_json_error_bodies_are_reported_readably() {
    let org = org(10, 20).await;
    let client = org.client("client_credentials");
    client.session().await.unwrap();
    org.sim.set_faults(FaultConfig {
        error_5xx: 100,
        error_5xx_status: 502,
        non_json_errors: true,
        endpoints: vec!["job_create".into()],
        ..Default::default()
    });
    let err = create(&client, SOQL).await.unwrap_err();
    assert!(matches!(&err, SalesforceError::Api { status: 502, code, .. } if code == "NON_JSON_ERROR"), "{err}");
    assert!(err.is_retryable());
    let requests = org.stats().requests;
    assert_eq!(requests["job_create"], 4, "retried per the policy, then gave up: {requests:?}");
    assert_eq!(requests["job_list"], 3, "each POST again only once the org lists no job it made: {requests:?}");
}

#[tokio::test]
async fn a_bad_login_names_the_error_and_no_secret() {
    let org = org(10, 20).await;
    let c = org.sim.credentials();
    let etc = org.dir.path().join("etc/sfdc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("bad.json"),
        json!({"client_id": c.client_id, "client_secret": "wrong-secret-value", "login_url": c.login_url}).to_string(),
    )
    .unwrap();
    let clients = Clients::new(CredentialsRoot::new(Some(org.dir.path().to_path_buf())), "63.0", fast_retries());
    let client = clients.get(Path::new("/etc/sfdc/bad.json")).unwrap();
    let err = client.session().await.unwrap_err().to_string();
    assert!(err.contains("Salesforce login failed") && err.contains("invalid_client"), "{err}");
    assert!(!err.contains("wrong-secret-value"), "{err}");
    let _unused: PathBuf = etc;
}

/// 1,000,000 records over many pages: complete, in order, the same Id set as the org's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_records_arrive_complete_and_in_order() {
    let org = org(1_000_000, 50_000).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let started = std::time::Instant::now();
    let (ids, pages) = read_all(client, job, 10_000).await.unwrap();
    eprintln!("1,000,000 records in {pages} pages: {:?}", started.elapsed());
    assert_eq!(pages, 20);
    assert_eq!(ids.len(), 1_000_000);
    assert_eq!(ids, sorted_ids(&org.sim));
}

/// Runs one event through a graph of `get_results` (configured by `config`) followed by `sink`
/// (when given), and returns how the event ended.
async fn run_results_task(
    org: &Org,
    ledger: Arc<bulkflow_engine::run::Ledger>,
    config: serde_json::Value,
    event: bulkflow_engine::event::Event,
    sink: Option<Arc<dyn bulkflow_engine::runtime::processor::Processor>>,
) -> bulkflow_engine::runtime::token::Outcome {
    run_bulk_task(org, ledger, config, None, event, sink).await
}

/// Runs one event through a `salesforce_bulkapi_query_job` task configured by `config` (with
/// `query`, for `create`), followed by `sink` when given; returns how the event ended.
async fn run_bulk_task(
    org: &Org,
    ledger: Arc<bulkflow_engine::run::Ledger>,
    config: serde_json::Value,
    query: Option<&str>,
    event: bulkflow_engine::event::Event,
    sink: Option<Arc<dyn bulkflow_engine::runtime::processor::Processor>>,
) -> bulkflow_engine::runtime::token::Outcome {
    use bulkflow_engine::runtime::graph::{Graph, NodeSpec};
    use bulkflow_engine::runtime::processor::Envelope;
    use bulkflow_engine::runtime::token::Token;
    use bulkflow_engine::tasks::salesforce_bulkapi_query_job::config::BulkQueryJobConfig;
    use bulkflow_engine::tasks::salesforce_bulkapi_query_job::processor::BulkQueryJobProcessor;

    let config: BulkQueryJobConfig = serde_json::from_value(config).unwrap();
    let clients =
        Arc::new(Clients::new(CredentialsRoot::new(Some(org.dir.path().to_path_buf())), "63.0", fast_retries()));
    let mut nodes = vec![NodeSpec {
        name: "get_job_results".into(),
        processor: Arc::new(BulkQueryJobProcessor {
            task: "get_job_results".into(),
            config,
            query: query.map(|q| bulkflow_engine::flow::template::Template::parse(q).unwrap()),
            clients,
            ledger,
            env: Arc::new(|_: &str| None),
        }),
        retry: Default::default(),
        children: vec![],
    }];
    if let Some(sink) = sink {
        nodes[0].children.push(1);
        nodes.push(NodeSpec { name: "sink".into(), processor: sink, retry: Default::default(), children: vec![] });
    }
    let running = Graph { flow: "listener".into(), nodes, roots: vec![0] }.spawn();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let token = Token::new(move |o| {
        let _ = tx.send(o);
    });
    running.inputs[0].send(Envelope { event, token }).await.unwrap();
    rx.await.unwrap()
}

/// A leaf that keeps the events it receives.
struct Sink(Arc<std::sync::Mutex<Vec<bulkflow_engine::event::Event>>>);

impl bulkflow_engine::runtime::processor::Processor for Sink {
    fn process<'a>(
        &'a self,
        event: bulkflow_engine::event::Event,
        _out: &'a mut bulkflow_engine::runtime::processor::Emitter,
    ) -> bulkflow_engine::runtime::processor::BoxFuture<'a, Result<(), bulkflow_engine::runtime::processor::TaskError>>
    {
        Box::pin(async move {
            self.0.lock().unwrap().push(event);
            Ok(())
        })
    }
}

/// `operation: get_results` as a task: deterministic batch ids, the run id found through the
/// job index, the total on the last batch, and the locator checkpointed per page.
#[tokio::test]
async fn get_results_task_emits_identified_batches_and_checkpoints_pages() {
    use bulkflow_engine::event::{Event, EventData};
    use bulkflow_engine::run::Ledger;
    use bulkflow_engine::runtime::token::Outcome;
    use bulkflow_engine::schedule::SystemClock;
    use bulkflow_engine::store::MemoryStore;
    use std::sync::Mutex;

    let org = org(95, 40).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock)));
    let run = ledger.open_run("q", chrono::Utc::now()).unwrap().run.id().clone();
    ledger.record_job(&run, &job.id).unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut event = Event::json("e", json!({"id": job.id}));
    event.meta.insert("job_id".into(), json!(job.id));
    let config = json!({
        "operation": "get_results", "credentials_path": "/etc/sfdc/client_credentials.json",
        "job_id": "{{event.meta.job_id}}", "batch_size": 30
    });
    let outcome = run_results_task(&org, ledger.clone(), config, event, Some(Arc::new(Sink(seen.clone())))).await;
    assert_eq!(outcome, Outcome::Completed);

    let seen = seen.lock().unwrap();
    // Pages of 40, 40 and 15 rows, in batches of at most 30: 30+10, 30+10, 15.
    let ids: Vec<&str> = seen.iter().map(|e| e.id.as_str()).collect();
    let expect: Vec<String> =
        [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)].iter().map(|(p, b)| format!("{}-p{p:05}-b{b:04}", job.id)).collect();
    assert_eq!(ids, expect);
    let rows: usize = seen
        .iter()
        .map(|e| match &e.data {
            EventData::Arrow(b) => b.num_rows(),
            _ => 0,
        })
        .sum();
    assert_eq!(rows, 95);
    assert!(seen.iter().all(|e| e.meta["run_id"] == run.as_str() && e.meta["job_id"] == job.id.as_str()));
    assert_eq!(seen.last().unwrap().meta["total_batches"], 5);
    assert!(seen[..4].iter().all(|e| !e.meta.contains_key("total_batches")));
    let cp = ledger.checkpoint(&run, "results").unwrap().unwrap();
    assert_eq!(cp.progress.pages_fetched, 3);
    assert_eq!(cp.progress.records_fetched, 95);
    assert_eq!(cp.progress.next_locator, None);
    assert_eq!(cp.progress.pages.len(), 3);
}

/// `deleted_records`: the run's results end with a batch of the records Salesforce reports
/// deleted since the flow's last written run and before the job was created (a record deleted
/// later is the next run's: this run may hold it live), counted in the run's total and
/// checkpointed as a page; after a crash that lost its acknowledgement it is emitted again, the
/// same. A flow's first run has no such batch.
#[tokio::test]
async fn get_results_ends_with_the_deleted_records_of_the_window() {
    use bulkflow_engine::event::{Event, EventData};
    use bulkflow_engine::run::{Ledger, RESULTS_STAGE, Update};
    use bulkflow_engine::runtime::token::Outcome;
    use bulkflow_engine::schedule::SystemClock;
    use bulkflow_engine::store::MemoryStore;
    use std::sync::Mutex;

    let org = org(60, 40).await;
    let client = org.client("client_credentials");
    let http = reqwest::Client::new();
    let delete = |n: usize| {
        let http = http.clone();
        let url = format!("{}/__sim/delete", org.sim.url());
        async move {
            let answer: serde_json::Value = http
                .post(url)
                .json(&json!({"object": "Account", "count": n}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect::<Vec<_>>()
        }
    };
    let first_job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let mut gone = delete(3).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let later = delete(2).await;
    let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock)));
    let config = json!({
        "operation": "get_results", "credentials_path": "/etc/sfdc/client_credentials.json",
        "job_id": "{{event.meta.job_id}}", "batch_size": 30, "deleted_records": true
    });
    let event_of = |job: &str| {
        let mut e = Event::json("e", json!({"id": job}));
        e.meta.insert("job_id".into(), json!(job));
        e
    };
    let event = || event_of(&job.id);
    let batches = |seen: &[Event]| -> Vec<(String, Vec<String>)> {
        seen.iter()
            .map(|e| match &e.data {
                EventData::Arrow(b) => {
                    let ids = b.column(0).as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
                    (e.id.clone(), ids.iter().map(|i| i.unwrap().to_string()).collect())
                }
                _ => panic!("not a batch"),
            })
            .collect()
    };

    // A flow's first run: the live records, no deleted batch.
    let first = ledger.open_run("q", chrono::Utc::now() - chrono::Duration::minutes(10)).unwrap().run.id().clone();
    ledger.record_job(&first, &first_job.id).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Some(Arc::new(Sink(seen.clone())) as _);
    let outcome = run_results_task(&org, ledger.clone(), config.clone(), event_of(&first_job.id), sink).await;
    assert_eq!(outcome, Outcome::Completed);
    assert_eq!(seen.lock().unwrap().len(), 3, "pages of 40 and 20 live rows: 30+10, 20");
    assert_eq!(ledger.get_run(&first).unwrap().unwrap().total_batches(), Some(3));

    // A later run of the flow, after one was written: its deletes come last, as one batch.
    ledger.raise_watermark("q", (chrono::Utc::now() - chrono::Duration::minutes(30)).timestamp()).unwrap();
    let run = ledger.open_run("q", chrono::Utc::now()).unwrap().run.id().clone();
    ledger.record_job(&run, &job.id).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let outcome =
        run_results_task(&org, ledger.clone(), config.clone(), event(), Some(Arc::new(Sink(seen.clone())))).await;
    assert_eq!(outcome, Outcome::Completed);
    let seen = seen.lock().unwrap().clone();
    let got = batches(&seen);
    assert_eq!(got.len(), 4);
    let (id, mut ids) = got[3].clone();
    assert_eq!(id, format!("{}-p00002-b0000", job.id));
    ids.sort();
    gone.sort();
    assert_eq!(ids, gone, "the deletes before the job, not the later ones ({later:?})");
    let EventData::Arrow(tombstones) = &seen[3].data else { unreachable!() };
    let flags =
        tombstones.column_by_name("IsDeleted").unwrap().as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
    assert!(flags.iter().all(|f| f == Some("true")));
    assert_eq!(seen[3].meta["total_batches"], 4);
    assert_eq!(ledger.get_run(&run).unwrap().unwrap().total_batches(), Some(4));
    let cp = ledger.checkpoint(&run, RESULTS_STAGE).unwrap().unwrap();
    assert_eq!(cp.progress.pages.len(), 3);
    assert_eq!(cp.progress.records_fetched, 57 + 3);

    // As if the bus lost the deleted batch's acknowledgement: it is emitted again, the same.
    let mut cp = cp;
    cp.progress.batches_published = [0, 1, 2].into();
    ledger.update(&run, &Update::new().checkpoint(cp)).unwrap();
    let again = Arc::new(Mutex::new(Vec::new()));
    let outcome = run_results_task(&org, ledger.clone(), config, event(), Some(Arc::new(Sink(again.clone())))).await;
    assert_eq!(outcome, Outcome::Completed);
    assert_eq!(batches(&again.lock().unwrap()), vec![got[3].clone()]);
}

/// A reading resumed from the run's checkpoint: the pages the bus acknowledged are not read again,
/// reading continues from the stored locator, and batches keep their ids and sequence numbers.
#[tokio::test]
async fn get_results_resumes_from_the_checkpoint_and_skips_what_the_bus_acknowledged() {
    use bulkflow_engine::event::{Event, EventData};
    use bulkflow_engine::run::{Ledger, RESULTS_STAGE, RunState, Update};
    use bulkflow_engine::runtime::token::Outcome;
    use bulkflow_engine::schedule::SystemClock;
    use bulkflow_engine::store::MemoryStore;
    use std::sync::Mutex;

    let org = org(95, 40).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock)));
    let run = ledger.open_run("q", chrono::Utc::now()).unwrap().run.id().clone();
    ledger.record_job(&run, &job.id).unwrap();
    let config = json!({
        "operation": "get_results", "credentials_path": "/etc/sfdc/client_credentials.json",
        "job_id": "{{event.meta.job_id}}", "batch_size": 30
    });
    let event = || {
        let mut e = Event::json("e", json!({"id": job.id}));
        e.meta.insert("job_id".into(), json!(job.id));
        e
    };
    let read = |seen: Arc<Mutex<Vec<Event>>>| {
        run_results_task(&org, ledger.clone(), config.clone(), event(), Some(Arc::new(Sink(seen))))
    };
    let first = Arc::new(Mutex::new(Vec::new()));
    assert_eq!(read(first.clone()).await, Outcome::Completed);
    assert_eq!(first.lock().unwrap().len(), 5);
    assert_eq!(ledger.get_run(&run).unwrap().unwrap().state(), RunState::ResultsFetched);
    assert_eq!(ledger.get_run(&run).unwrap().unwrap().total_batches(), Some(5));

    // As if the process died after page 0, whose batches the bus acknowledged, and the bus then
    // acknowledged batch 3 (page 1) too.
    let mut cp = ledger.checkpoint(&run, RESULTS_STAGE).unwrap().unwrap();
    let full = cp.progress.clone();
    cp.progress.pages.truncate(1);
    cp.progress.pages_fetched = 1;
    cp.progress.batches_fetched = 2;
    cp.progress.records_fetched = 40;
    cp.progress.next_locator = full.pages[1].locator.clone();
    cp.progress.batches_published = [0, 1].into();
    ledger.update(&run, &Update::new().checkpoint(cp)).unwrap();
    let second = Arc::new(Mutex::new(Vec::new()));
    assert_eq!(read(second.clone()).await, Outcome::Completed);
    let seen = second.lock().unwrap().clone();
    let ids: Vec<String> = seen.iter().map(|e| e.id.clone()).collect();
    let expect: Vec<String> =
        ["p00001-b0000", "p00001-b0001", "p00002-b0000"].iter().map(|s| format!("{}-{s}", job.id)).collect();
    assert_eq!(ids, expect);
    let seqs: Vec<u64> = seen.iter().map(|e| e.meta["batch_seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [2, 3, 4]);
    let rows: usize = seen.iter().map(|e| if let EventData::Arrow(b) = &e.data { b.num_rows() } else { 0 }).sum();
    assert_eq!(rows, 55);
    let after = ledger.checkpoint(&run, RESULTS_STAGE).unwrap().unwrap().progress;
    assert_eq!((after.pages, after.batches_fetched, after.records_fetched), (full.pages, 5, 95));

    // A third reading after the bus acknowledged all but batch 3: only page 1 is read, only
    // batch 3 is emitted.
    for seq in [0, 1, 2, 4] {
        ledger.batch_published(&run, seq, "s").unwrap();
    }
    let third = Arc::new(Mutex::new(Vec::new()));
    assert_eq!(read(third.clone()).await, Outcome::Completed);
    let ids: Vec<String> = third.lock().unwrap().iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, [format!("{}-p00001-b0001", job.id)]);
}

#[tokio::test]
async fn latency_slows_calls_down_but_changes_nothing_else() {
    let org = org(40, 20).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    org.sim.set_faults(FaultConfig { latency_ms: 150, ..Default::default() });
    let started = std::time::Instant::now();
    let (ids, pages) = read_all(client, job.clone(), 100).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    assert_eq!((ids, pages), (sorted_ids(&org.sim), 2));
    let per_locator = &org.stats().requests_per_locator[&job.id];
    assert!(per_locator.values().all(|n| *n == 1), "no page fetched twice: {per_locator:?}");
}

/// A run whose job Salesforce failed with `QUERY_TIMEOUT: too slow`, in a fresh ledger.
async fn failed_job_run(
    org: &Org,
) -> (Arc<bulkflow_engine::run::Ledger>, bulkflow_engine::run::RunId, bulkflow_engine::salesforce::bulk::JobInfo) {
    use bulkflow_engine::run::Ledger;
    use bulkflow_engine::schedule::SystemClock;
    use bulkflow_engine::store::MemoryStore;

    let client = org.client("client_credentials");
    org.sim.set_faults(FaultConfig {
        fail_jobs: 1,
        failed_job_message: Some("QUERY_TIMEOUT: too slow".into()),
        ..Default::default()
    });
    let job = create(&client, SOQL).await.unwrap();
    completed(&client, &job.id).await.unwrap_err();
    let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock)));
    let run = ledger.open_run("q", chrono::Utc::now()).unwrap().run.id().clone();
    ledger.record_job(&run, &job.id).unwrap();
    (ledger, run, job)
}

/// A completion poller for flow `q` (its creator reads the org's client-credentials file) that
/// looks at runs quiet for 300 ms.
fn poller(
    org: &Org,
    ledger: Arc<bulkflow_engine::run::Ledger>,
    injector: Arc<bulkflow_engine::runtime::inject::Injector>,
) -> bulkflow_engine::node::poller::Poller {
    let creator =
        serde_json::from_value(json!({"operation": "create", "credentials_path": "/etc/sfdc/client_credentials.json"}))
            .unwrap();
    bulkflow_engine::node::poller::Poller {
        ledger,
        clients: Arc::new(Clients::new(
            CredentialsRoot::new(Some(org.dir.path().to_path_buf())),
            "63.0",
            fast_retries(),
        )),
        injector,
        buses: Arc::new(bulkflow_engine::bus::registry::BusRegistry::new(None, CredentialsRoot::new(None))),
        quiet_after: Duration::from_millis(300),
        creators: [("q".to_string(), creator)].into(),
        listener: true,
    }
}

/// A job that ends `Failed` fails the run it belongs to, with Salesforce's message.
#[tokio::test]
async fn a_failed_job_fails_its_run() {
    use bulkflow_engine::event::Event;
    use bulkflow_engine::run::RunState;
    use bulkflow_engine::runtime::token::Outcome;

    let org = org(10, 20).await;
    let (ledger, run, job) = failed_job_run(&org).await;
    let config = json!({
        "operation": "get_results", "credentials_path": "/etc/sfdc/client_credentials.json", "job_id": "{{event.data.id}}"
    });
    let outcome = run_results_task(&org, ledger.clone(), config, Event::json("e", json!({"id": job.id})), None).await;
    assert!(matches!(outcome, Outcome::Failed { .. }));
    let r = ledger.get_run(&run).unwrap().unwrap();
    assert_eq!(r.state(), RunState::Failed);
    assert_eq!(r.last_error().unwrap(), format!("Salesforce job {} failed: QUERY_TIMEOUT: too slow", job.id));
}

/// The completion poller stands in for a completion event that never came; a run whose job
/// vanished from Salesforce gets a new job for the query it recorded instead of staying stuck, and
/// one that recorded no query fails visibly (the next run covers its window).
#[tokio::test]
async fn the_completion_poller_stands_in_for_missed_events_and_recreates_vanished_jobs() {
    use bulkflow_engine::node::poller::RECREATE_STAGE;
    use bulkflow_engine::run::{Checkpoint, Ledger, RunState, Update};
    use bulkflow_engine::runtime::inject::Injector;
    use bulkflow_engine::schedule::SystemClock;
    use bulkflow_engine::store::MemoryStore;
    use bulkflow_engine::tasks::salesforce_bulkapi_query_job::processor::INTENT_STAGE;

    let org = org(10, 100).await;
    let client = org.client("client_credentials");
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let gone = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    let lost = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    bulk::delete_job(&client, &gone.id).await.unwrap();
    bulk::delete_job(&client, &lost.id).await.unwrap();
    let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock)));
    let now = chrono::Utc::now();
    let run = ledger.open_run("q", now).unwrap().run.id().clone();
    ledger.record_job(&run, &job.id).unwrap();
    // The job-creating task records its query before creating the job.
    let vanished = ledger.open_run("q", now - chrono::Duration::hours(1)).unwrap().run.id().clone();
    let intent = Checkpoint::new(INTENT_STAGE, json!({"soql": SOQL, "operation": "Query"}));
    ledger.update(&vanished, &Update::new().checkpoint(intent)).unwrap();
    ledger.record_job(&vanished, &gone.id).unwrap();
    ledger.results_started(&vanished, json!({})).unwrap();
    let unknown = ledger.open_run("q", now - chrono::Duration::hours(2)).unwrap().run.id().clone();
    ledger.record_job(&unknown, &lost.id).unwrap();
    // A poller that crashed after recording its intent to replace a vanished job and after the
    // POST, before recording the new job: the job it made is adopted, not doubled.
    let forgotten = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    bulk::delete_job(&client, &forgotten.id).await.unwrap();
    let crashed = ledger.open_run("q", now - chrono::Duration::hours(3)).unwrap().run.id().clone();
    let intent = Checkpoint::new(INTENT_STAGE, json!({"soql": SOQL, "operation": "Query"}));
    ledger.update(&crashed, &Update::new().checkpoint(intent)).unwrap();
    ledger.record_job(&crashed, &forgotten.id).unwrap();
    let recreating = Checkpoint::new(RECREATE_STAGE, json!({"old_job": forgotten.id}));
    ledger.update(&crashed, &Update::new().checkpoint(recreating)).unwrap();
    let made = create(&client, SOQL).await.unwrap();

    let injector = Arc::new(Injector::default());
    let poller = poller(&org, ledger.clone(), injector.clone());
    let polling = tokio::spawn(poller.run());
    let event = tokio::time::timeout(Duration::from_secs(10), injector.recv()).await.unwrap().unwrap();
    let data = event.template_view()["data"].clone();
    assert_eq!(data["Type"], "RESULT");
    assert_eq!(data["ResultType"], "FINAL");
    assert_eq!(data["JobIdentifier"], job.id.as_str());
    assert_eq!(data["JobState"], "JobComplete");
    // A run that got its event is quiet again only after `quiet_after`: no second stand-in at once.
    assert!(tokio::time::timeout(Duration::from_millis(200), injector.recv()).await.is_err());

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (replaced, failed) = loop {
        let replaced = ledger.get_run(&vanished).unwrap().unwrap();
        let failed = ledger.get_run(&unknown).unwrap().unwrap();
        if replaced.job_id() != Some(gone.id.as_str()) && failed.state() == RunState::Failed {
            break (replaced, failed);
        }
        assert!(std::time::Instant::now() < deadline, "{replaced:?} {failed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let new_job = replaced.job_id().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ledger.get_run(&crashed).unwrap().unwrap().job_id() == Some(forgotten.id.as_str()) {
        assert!(std::time::Instant::now() < deadline, "the crashed re-creation was not finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let adopted = ledger.get_run(&crashed).unwrap().unwrap();
    assert_eq!(adopted.job_id(), Some(made.id.as_str()), "the job made before the crash is adopted: {adopted:?}");
    assert_ne!(new_job, made.id, "the other run's new job is its own");
    assert_eq!(replaced.state(), RunState::JobCreated, "{replaced:?}");
    assert!(replaced.history().last().unwrap().error.as_deref().unwrap().contains(&new_job), "{replaced:?}");
    assert_eq!(ledger.run_for_job(&new_job).unwrap(), Some(vanished.clone()));
    assert_eq!(ledger.run_for_job(&gone.id).unwrap(), None, "a late event of the old job is foreign");
    assert!(ledger.checkpoint(&vanished, "results").unwrap().is_none(), "the old job's pages are forgotten");
    let info = bulk::get_job(&client, &new_job).await.unwrap();
    assert_eq!((info.object.as_str(), info.raw["operation"].as_str()), ("Account", Some("query")), "{info:?}");
    assert!(failed.last_error().unwrap().contains("no longer exists"), "{failed:?}");
    // The new jobs complete, and with no event for them the poller stands in once more.
    let mut stood_in = std::collections::BTreeSet::new();
    while !(stood_in.contains(&new_job) && stood_in.contains(&made.id)) {
        let event = tokio::time::timeout(Duration::from_secs(10), injector.recv()).await.unwrap().unwrap();
        stood_in.insert(event.template_view()["data"]["JobIdentifier"].as_str().unwrap().to_string());
    }
    polling.abort();
}

/// A job that failed in Salesforce while no event reached us: the poller fails its run with
/// Salesforce's message instead of handing the listening flow an event its script drops (the
/// seed's keeps only `JobComplete`), which left the run at `job_created` for ever.
#[tokio::test]
async fn the_completion_poller_fails_a_run_whose_job_failed() {
    use bulkflow_engine::run::RunState;
    use bulkflow_engine::runtime::inject::Injector;

    let org = org(10, 100).await;
    let (ledger, run, _) = failed_job_run(&org).await;
    let injector = Arc::new(Injector::default());
    let poller = poller(&org, ledger.clone(), injector.clone());
    let polling = tokio::spawn(poller.run());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let r = ledger.get_run(&run).unwrap().unwrap();
        if r.state() != RunState::JobCreated {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "the run stayed at job_created: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    polling.abort();
    assert_eq!(failed.state(), RunState::Failed, "{failed:?}");
    assert!(failed.last_error().unwrap().contains("QUERY_TIMEOUT: too slow"), "{failed:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(10), injector.recv()).await.is_err(),
        "no stand-in event for a failed job"
    );
}

/// A job another user of the org created (another team's integration), through `POST /__sim/jobs`.
async fn foreign_job(org: &Org, object: &str) -> serde_json::Value {
    let answer = reqwest::Client::new()
        .post(format!("{}/__sim/jobs", org.sim.url()))
        .json(&json!({"object": object, "query": format!("SELECT Id FROM {object}"), "operation": "query"}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
    answer.json().await.unwrap()
}

/// The job-creating task after a crash between recording its intent and recording its job: a job
/// another user created meanwhile on the same object is neither adopted nor aborted and the run
/// gets a job of its own; a job our own POST made before the crash is adopted, not doubled.
#[tokio::test]
async fn after_a_crash_only_our_own_job_is_adopted_and_a_foreign_one_is_left_alone() {
    use bulkflow_engine::event::Event;
    use bulkflow_engine::run::{Checkpoint, Ledger, Update};
    use bulkflow_engine::runtime::token::Outcome;
    use bulkflow_engine::schedule::SystemClock;
    use bulkflow_engine::store::MemoryStore;
    use bulkflow_engine::tasks::salesforce_bulkapi_query_job::processor::INTENT_STAGE;

    let org = org(30, 100).await;
    let client = org.client("client_credentials");
    let me = client.session().await.unwrap().user_id.clone();
    assert!(me.starts_with("005"), "the token's identity URL names our user: {me}");
    let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock)));
    let config = json!({"operation": "create", "credentials_path": "/etc/sfdc/client_credentials.json"});
    let crashed_run = |hours_ago: i64| {
        let run =
            ledger.open_run("q", chrono::Utc::now() - chrono::Duration::hours(hours_ago)).unwrap().run.id().clone();
        let intent = Checkpoint::new(INTENT_STAGE, json!({"soql": SOQL, "operation": "Query"}));
        ledger.update(&run, &Update::new().checkpoint(intent)).unwrap();
        run
    };
    let event_of = |run: &bulkflow_engine::run::RunId| {
        let mut event = Event::json("tick", json!({}));
        event.meta.insert("run_id".into(), json!(run.as_str()));
        event
    };

    // 1. Intent recorded, the POST never answered (the process died); another team creates an
    // Account query job before the restart.
    let run = crashed_run(1);
    let foreign = foreign_job(&org, "Account").await;
    let foreign_id = foreign["id"].as_str().unwrap().to_string();
    assert_ne!(foreign["createdById"].as_str(), Some(me.as_str()), "{foreign}");
    let outcome = run_bulk_task(&org, ledger.clone(), config.clone(), Some(SOQL), event_of(&run), None).await;
    assert_eq!(outcome, Outcome::Completed);
    let own = ledger.get_run(&run).unwrap().unwrap().job_id().unwrap().to_string();
    assert_ne!(own, foreign_id, "another user's job is never adopted");
    assert_eq!(bulk::get_job(&client, &own).await.unwrap().raw["createdById"].as_str(), Some(me.as_str()));
    let theirs = completed(&client, &foreign_id).await.unwrap();
    assert_eq!(theirs.state, "JobComplete", "another user's job is never aborted");
    assert_eq!(org.stats().requests.get("job_abort").copied().unwrap_or(0), 0);

    // 2. Intent recorded, our POST made the job, the process died before recording it.
    let run = crashed_run(2);
    let made = create(&client, SOQL).await.unwrap();
    let created_before = org.stats().requests["job_create"];
    let outcome = run_bulk_task(&org, ledger.clone(), config.clone(), Some(SOQL), event_of(&run), None).await;
    assert_eq!(outcome, Outcome::Completed);
    assert_eq!(ledger.get_run(&run).unwrap().unwrap().job_id(), Some(made.id.as_str()), "our job is adopted");
    assert_eq!(org.stats().requests["job_create"], created_before, "and no second job is created");
    assert_eq!(ledger.run_for_job(&foreign_id).unwrap(), None);
}

/// A create whose answer is lost after Salesforce made the job: the client finds that job before
/// posting again, so no orphan is left running.
#[tokio::test]
async fn a_create_whose_answer_was_lost_takes_the_job_it_made_instead_of_posting_again() {
    let org = org(30, 100).await;
    let client = org.client("client_credentials");
    client.session().await.unwrap();
    org.sim.set_faults(FaultConfig { lose_answers: 1, endpoints: vec!["job_create".into()], ..Default::default() });
    let job = create(&client, SOQL).await.unwrap();
    let stats = org.stats();
    assert_eq!(stats.faults_injected.get("lose_answers"), Some(&1));
    assert_eq!(stats.requests["job_create"], 1, "one POST: the job it made was found, not created again");
    assert_eq!(stats.jobs_created["Account"], 1);
    assert_eq!(stats.requests["job_list"], 1);
    assert_eq!(completed(&client, &job.id).await.unwrap().state, "JobComplete");
}

/// A completed job of `accounts` records in pages of `page`, and a client for it.
async fn completed_job(accounts: usize, page: usize, limits: Limits) -> (Org, Arc<SalesforceClient>, JobInfo) {
    let org = org(accounts, page).await;
    let client = org.client_with("client_credentials", limits);
    let job = completed(&client, &create(&client, SOQL).await.unwrap().id).await.unwrap();
    (org, client, job)
}

fn fetches_per_page(org: &Org, job: &JobInfo) -> BTreeMap<String, u64> {
    org.stats().requests_per_locator[&job.id].clone()
}

#[tokio::test]
async fn an_html_page_answered_with_200_is_refused_and_asked_for_again() {
    let (org, client, job) = completed_job(60, 20, Limits::default()).await;
    org.sim.set_faults(FaultConfig { html_pages: 1, ..Default::default() });
    let (ids, pages) = read_all(client.clone(), job.clone(), 100).await.unwrap();
    assert_eq!((ids, pages), (sorted_ids(&org.sim), 3));
    assert_eq!(fetches_per_page(&org, &job).get("(first)"), Some(&2), "the portal's page, then the real one");
    org.sim.set_faults(FaultConfig { html_pages: 100, ..Default::default() });
    let e = read_all(client, job, 100).await.unwrap_err();
    assert!(matches!(&e, SalesforceError::Garbled { .. }), "{e}");
    assert!(e.to_string().contains("`text/html; charset=UTF-8` where CSV belongs"), "{e}");
}

#[tokio::test]
async fn a_truncated_gzip_body_is_fetched_again() {
    let (org, client, job) = completed_job(300, 100, Limits::default()).await;
    org.sim.set_faults(FaultConfig { truncated_gzip_pages: 1, ..Default::default() });
    let (ids, _) = read_all(client.clone(), job.clone(), 100).await.unwrap();
    assert_eq!(ids, sorted_ids(&org.sim));
    assert_eq!(fetches_per_page(&org, &job).get("(first)"), Some(&2));
    org.sim.set_faults(FaultConfig { truncated_gzip_pages: 100, ..Default::default() });
    let e = read_all(client, job, 100).await.unwrap_err();
    assert!(matches!(&e, SalesforceError::Truncated { .. }) && e.to_string().contains("page 0 was cut off"), "{e}");
}

#[tokio::test]
async fn a_header_that_differs_between_pages_is_an_error() {
    let (org, client, job) = completed_job(60, 20, Limits::default()).await;
    org.sim.set_faults(FaultConfig { rename_header_pages: 1, ..Default::default() });
    let e = read_all(client, job, 100).await.unwrap_err();
    assert!(matches!(&e, SalesforceError::Csv { page: 1, .. }), "{e}");
    assert!(e.to_string().contains("\"LastModifiedDate__renamed\"] differs from the first page's"), "{e}");
}

#[tokio::test]
async fn an_unterminated_quote_is_an_error_naming_its_record() {
    let (org, client, job) = completed_job(60, 20, Limits::default()).await;
    org.sim.set_faults(FaultConfig { unterminated_quote_pages: 1, ..Default::default() });
    let e = read_all(client, job, 100).await.unwrap_err();
    assert!(matches!(&e, SalesforceError::Csv { page: 0, .. }), "{e}");
    // Without the check the page passes, its record count right, the last value ending in "\n".
    assert!(e.to_string().ends_with("page 0: row 20: a quoted field is never closed (the page ends inside it)"), "{e}");
}

#[tokio::test]
async fn invalid_utf8_is_an_error_naming_its_record_and_column() {
    let (org, client, job) = completed_job(60, 20, Limits::default()).await;
    org.sim.set_faults(FaultConfig { invalid_utf8_pages: 1, ..Default::default() });
    let e = read_all(client, job, 100).await.unwrap_err();
    assert!(e.to_string().contains("page 0: row 1: column 1 is not UTF-8"), "{e}");
}

#[tokio::test]
async fn a_page_announcing_5_gb_is_refused_before_its_body_is_read() {
    let (org, client, job) = completed_job(60, 20, Limits::default()).await;
    org.sim.set_faults(FaultConfig { huge_pages: 1, ..Default::default() });
    let got = tokio::time::timeout(Duration::from_secs(30), read_all(client, job, 100)).await;
    let e = got.expect("refused at once").unwrap_err();
    assert!(matches!(&e, SalesforceError::Protocol { .. }) && !e.is_retryable(), "{e}");
    assert!(
        e.to_string()
            .contains("announces 5368709120 bytes (Content-Length), more than salesforce_max_page_size (4 GiB)"),
        "{e}"
    );
    // What the sockets buffered before the connection was dropped; 81,920 chunks without the check.
    let chunks = org.stats().faults_injected.get("page_body_chunk").copied().unwrap_or_default();
    assert!(chunks < 512, "{chunks} chunks of 64 KiB sent");
}

#[tokio::test]
async fn a_page_longer_than_its_cap_is_stopped_as_it_is_read() {
    let (_org, client, job) = completed_job(60, 20, Limits { max_page_bytes: 512, ..Limits::default() }).await;
    let e = read_all(client, job, 100).await.unwrap_err();
    assert!(matches!(&e, SalesforceError::Protocol { .. }), "{e}");
    assert!(
        e.to_string().contains("page 0 makes no sense: the page is longer than salesforce_max_page_size (512 bytes)"),
        "{e}"
    );
}

#[tokio::test]
async fn a_slowloris_page_ends_at_the_page_deadline() {
    let limits = Limits { page_timeout: Duration::from_secs(1), ..Limits::default() };
    let (org, client, job) = completed_job(60, 20, limits).await;
    // About 1.3 KB a page at a byte every 20 ms: half a minute a page without the deadline.
    org.sim.set_faults(FaultConfig { slow_pages: 100, slow_byte_interval_ms: 20, ..Default::default() });
    let started = std::time::Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(25), read_all(client, job.clone(), 100)).await;
    let e = got.expect("the deadline ends it").unwrap_err();
    assert!(matches!(&e, SalesforceError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("page 0 did not arrive whole within salesforce_page_timeout (1s)"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(fetches_per_page(&org, &job).get("(first)"), Some(&4), "each attempt its own deadline");
}
