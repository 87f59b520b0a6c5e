//! The product's promise end to end, with real processes: `bulkflow sim serve` (Salesforce with its
//! Pub/Sub API), `bulkflow run` on the seed's query and listener flows and the Account writer with
//! PostgreSQL, a real PostgreSQL, Parquet on local disk; once on the embedded bus and once on a
//! real nats-server. Two incremental runs around a change in the org export exactly the changed
//! records (plus the flow's one-hour overlap); the warehouse holds the latest version of every
//! record and the lake every Id. A purged bus stream between `published` and `written` makes the
//! run fetch its batches again and complete.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulkflow_testkit::nats::NatsServer;
use bulkflow_testkit::postgres::Postgres;
use serde_json::{Value, json};

#[path = "support/engine_run.rs"]
mod engine_run;

#[path = "support/lake.rs"]
mod lake;

use lake::{lake_contents, lake_ids};

#[path = "support/sim_process.rs"]
mod sim_process;

use sim_process::SimProcess;

const RECORDS: usize = 3000;
const QUERY_FLOW: &str = "salesforce_bulkapi_query_account";
const FLOWS: [&str; 3] = [
    "workflows/seed/salesforce_bulkapi_query_account.yaml",
    "workflows/seed/salesforce_bulkapi_job_listener.yaml",
    "workflows/postgres/salesforce_bulkapi_writer_account_postgres.yaml",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A simulated org in its own process, serving until dropped.
struct Sim(SimProcess);

impl Sim {
    fn start(dir: &Path) -> Sim {
        Self::start_with(dir, &[])
    }

    fn start_with(dir: &Path, extra: &[&str]) -> Sim {
        let state = dir.join("sim").display().to_string();
        let records = format!("Account={RECORDS}");
        let args = [&["--records", &records, "--job-latency", "300ms", "--state", &state], extra].concat();
        Sim(SimProcess::start(dir, &args))
    }

    fn post(&self, path: &str, body: String) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let resp = reqwest::Client::new().post(format!("{}{path}", self.0.url)).body(body).send().await.unwrap();
            assert!(resp.status().is_success(), "POST {path}: {}", resp.status());
            resp.json().await.unwrap()
        })
    }

    fn get(&self, path: &str) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let resp = reqwest::Client::new().get(format!("{}{path}", self.0.url)).send().await.unwrap();
            assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
            resp.json().await.unwrap()
        })
    }

    /// The org's Account Ids with their LastModifiedDate.
    fn accounts(&self) -> BTreeMap<String, String> {
        let rows = self.post("/__sim/query", "SELECT Id, LastModifiedDate FROM Account".into());
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
            .collect()
    }
}

struct Deployment {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Deployment {
    fn new(dir: &Path, warehouse: &str, nats: Option<&str>) -> Deployment {
        Self::with_flows(dir, warehouse, nats, &FLOWS)
    }

    fn with_flows(dir: &Path, warehouse: &str, nats: Option<&str>, flows: &[&str]) -> Deployment {
        std::fs::create_dir_all(dir.join("wf")).unwrap();
        for flow in flows {
            let name = Path::new(flow).file_name().unwrap();
            std::fs::copy(repo().join(flow), dir.join("wf").join(name)).unwrap();
        }
        let env = vec![
            ("GCS_BUCKET_PATH".to_string(), dir.join("lake").display().to_string()),
            ("WAREHOUSE_URL".to_string(), warehouse.to_string()),
            ("NATS_URL".to_string(), nats.unwrap_or("").to_string()),
        ];
        Deployment { dir: dir.to_path_buf(), env }
    }

    fn bulkflow(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkflow"));
        cmd.current_dir(&self.dir)
            .args(args)
            .arg("--workflows")
            .arg(self.dir.join("wf"))
            .arg("--resources")
            .arg(repo().join("resources"))
            .arg("--state")
            .arg(self.dir.join("state"))
            .arg("--credentials-root")
            .arg(self.dir.join("creds"))
            .env("RUST_LOG", "info")
            .env_remove("BULKFLOW_CONFIG")
            .envs(self.env.iter().cloned());
        cmd
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.bulkflow(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    fn run_json(&self, id: &str) -> Value {
        serde_json::from_slice(&self.ok(&["runs", "show", id, "--json"])).unwrap()
    }

    /// Opens an on-demand run of the query flow and returns its id.
    fn start_run(&self, since: Option<&str>) -> String {
        self.start_run_of(QUERY_FLOW, since)
    }

    /// Opens an on-demand run of `flow` and returns its id.
    fn start_run_of(&self, flow: &str, since: Option<&str>) -> String {
        let mut args = vec!["runs", "start", flow];
        if let Some(s) = since {
            args.extend(["--since", s]);
        }
        let out = String::from_utf8(self.ok(&args)).unwrap();
        out.split_whitespace().next().unwrap().to_string()
    }

    /// Runs the engine until `written` runs appear in its log, then stops it with SIGTERM.
    /// `during` runs once the engine started, with its log's path.
    fn run_until_written(&self, log: &str, written: usize, during: impl FnOnce(&str)) {
        self.run_until(log, |text| text.matches("run written").count() >= written, during);
    }

    /// Runs the engine until its log satisfies `done`, then stops it with SIGTERM.
    fn run_until(&self, log: &str, done: impl Fn(&str) -> bool, during: impl FnOnce(&str)) {
        let engine = self.bulkflow(&["run", "--job-poll-after", "3s"]);
        let log = self.dir.join(log);
        engine_run::run_until(engine, &log, Duration::from_secs(180), done, |path| during(path.to_str().unwrap()));
    }
}

fn warehouse_rows(url: &str) -> BTreeMap<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let rows = client
            .query(r#"SELECT "Id", to_char("LastModifiedDate" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM salesforce.account"#, &[])
            .await
            .unwrap();
        let mut out = BTreeMap::new();
        for r in rows {
            let id: String = r.get(0);
            assert!(out.insert(id.clone(), r.get::<_, String>(1)).is_none(), "Id {id} twice in the warehouse");
        }
        out
    })
}

/// A Salesforce timestamp (`2026-11-25T09:05:00.000Z` or `...000+0000`).
fn parse_time(t: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(t)
        .or_else(|_| chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.3f%z"))
        .unwrap_or_else(|e| panic!("`{t}`: {e}"))
        .with_timezone(&chrono::Utc)
}

/// Salesforce's timestamps in the warehouse's form.
fn normalise(t: &str) -> String {
    parse_time(t).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn two_incremental_runs(nats: Option<&NatsServer>) {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start();
    let warehouse = pg.database("warehouse");
    let sim = Sim::start(dir.path());
    let nats_url = nats.map(NatsServer::url);
    let d = Deployment::new(dir.path(), &warehouse, nats_url.as_deref());

    let first = d.start_run(None);
    d.run_until_written("run1.log", 1, |_| {});
    let run1 = d.run_json(&first);
    assert_eq!(run1["state"], "written", "{run1:#}");
    let org = sim.accounts();
    assert_eq!(org.len(), RECORDS);
    let lake: BTreeSet<String> = lake_ids(&d.dir.join("lake"));
    assert_eq!(lake, org.keys().cloned().collect::<BTreeSet<_>>(), "the lake holds every Id of the org");
    let rows = warehouse_rows(&warehouse);
    assert_eq!(rows.len(), RECORDS);

    // The org changes; the next run covers the window from an hour before the first run.
    let applied = sim.post("/__sim/changes", json!({"modifications": 40, "inserts": 12}).to_string());
    assert!(applied["applied_at"].is_string());
    let since = run1["scheduled_at"].as_str().unwrap().to_string();
    let second = d.start_run(Some(&since));
    d.run_until_written("run2.log", 1, |_| {});
    let run2 = d.run_json(&second);
    assert_eq!(run2["state"], "written", "{run2:#}");

    let org = sim.accounts();
    let window_start = chrono::DateTime::parse_from_rfc3339(&since).unwrap() - chrono::Duration::hours(1);
    let in_window = org.values().filter(|t| parse_time(t) >= window_start).count();
    let fetched = run2["checkpoints"].as_array().unwrap().iter().find(|c| c["stage"] == "results").unwrap()["progress"]
        ["records_fetched"]
        .as_u64()
        .unwrap();
    assert_eq!(fetched as usize, in_window, "the second run exports exactly the changes and the overlap");
    assert!((52..RECORDS).contains(&in_window), "{in_window} records in the second window");
    let rows = warehouse_rows(&warehouse);
    let expected: BTreeMap<String, String> = org.iter().map(|(id, t)| (id.clone(), normalise(t))).collect();
    assert_eq!(rows, expected, "the warehouse holds the latest version of every record");
    let lake: BTreeSet<String> = lake_ids(&d.dir.join("lake"));
    assert_eq!(lake, org.keys().cloned().collect::<BTreeSet<_>>());
}

#[test]
fn two_incremental_runs_on_the_embedded_bus() {
    two_incremental_runs(None);
}

#[test]
fn two_incremental_runs_on_nats() {
    let nats = NatsServer::start();
    two_incremental_runs(Some(&nats));
}

/// Waits until `text` appears in the log at `path`; its content then.
fn wait_for_log(path: &str, text: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            return log;
        }
        assert!(Instant::now() < deadline, "no `{text}` in the engine's log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bus loses a run's batches between `published` and `written` (the stream is purged while
/// the writer cannot write): the engine notices the run stuck at `published`, fetches the lost
/// batches again by their locators, publishes them again, and the run completes with every Id in
/// the lake and the warehouse.
#[test]
fn a_purged_stream_between_published_and_written_is_fetched_again() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start();
    let warehouse = pg.database("warehouse");
    let sim = Sim::start(dir.path());
    let d = Deployment::new(dir.path(), &warehouse, Some(&nats.url()));
    // The lake's path runs through a file: no batch can be written until it is removed.
    std::fs::write(dir.path().join("lake"), "not a directory").unwrap();
    let id = d.start_run(None);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let purged = rt.block_on(async { async_nats::connect(nats.url()).await.unwrap() });
    let written = format!("run written run={id}");
    d.run_until(
        "run.log",
        |log| log.contains(&written),
        |log| {
            wait_for_log(log, "results fetched", Duration::from_secs(60));
            let stream_len = || {
                rt.block_on(async {
                    let js = async_nats::jetstream::new(purged.clone());
                    js.get_stream("salesforce_bulkapi").await.unwrap().info().await.unwrap().state.messages
                })
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while stream_len() == 0 {
                assert!(Instant::now() < deadline, "nothing was published");
                std::thread::sleep(Duration::from_millis(100));
            }
            // The writer gave up on its copy (naked, to come back after the backoff): from here the
            // batch exists only in the stream.
            let text = wait_for_log(log, "event failed; it will be delivered again", Duration::from_secs(60));
            assert!(text.contains("run published") && !text.contains("run written"), "{text}");
            let before = stream_len();
            rt.block_on(async {
                let js = async_nats::jetstream::new(purged.clone());
                js.get_stream("salesforce_bulkapi").await.unwrap().purge().await.unwrap();
            });
            assert_eq!(stream_len(), 0, "purged {before} messages");
            std::fs::remove_file(dir.path().join("lake")).unwrap();
        },
    );
    let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert!(log.contains("the bus lost them; fetching them again"), "{log}");
    let run = d.run_json(&id);
    assert_eq!(run["state"], "written", "{run:#}");
    let org = sim.accounts();
    let lake: BTreeSet<String> = lake_ids(&d.dir.join("lake"));
    assert_eq!(lake, org.keys().cloned().collect::<BTreeSet<_>>(), "the lake holds every Id of the org");
    assert_eq!(warehouse_rows(&warehouse).len(), RECORDS);
}

/// A run whose batches no writer flow subscribes to stays `published` (saying why) rather than
/// becoming `written` while the bus may drop its batches, and the watermark stays; restarted with
/// the writer flow, the run is written from the batches the bus kept.
#[test]
fn a_run_with_no_writer_stays_published_until_a_writer_flow_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start();
    let warehouse = pg.database("warehouse");
    let _sim = Sim::start(dir.path());
    let d = Deployment::with_flows(dir.path(), &warehouse, None, &FLOWS[..2]);
    let id = d.start_run(None);
    d.run_until("alone.log", |log| log.contains("run stays published"), |_| {});
    let listed: Value = serde_json::from_slice(&d.ok(&["runs", "list", "--json"])).unwrap();
    let run = listed.as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap().clone();
    assert_eq!(run["state"], "published", "{run:#}");
    assert!(run["job_id"].as_str().is_some_and(|j| j.starts_with("750")), "{run:#}");
    let shown = d.run_json(&id);
    assert_eq!(shown["waiting"], "no writer flow subscribes to salesforce_bulkapi.query_jobs.account", "{shown:#}");
    let text = String::from_utf8(d.ok(&["runs", "show", &id])).unwrap();
    assert!(text.contains("waiting    no writer flow subscribes to salesforce_bulkapi.query_jobs.account"), "{text}");

    // The writer flow is deployed and the engine restarted: the run settles as usual.
    let writer = repo().join(FLOWS[2]);
    std::fs::copy(&writer, dir.path().join("wf").join(writer.file_name().unwrap())).unwrap();
    d.run_until_written("with_writer.log", 1, |_| {});
    let shown = d.run_json(&id);
    assert_eq!(shown["state"], "written", "{shown:#}");
    assert_eq!(shown["waiting"], Value::Null);
    assert_eq!(warehouse_rows(&warehouse).len(), RECORDS);
}

/// A writer slower than `job_poll_after` (its table locked for three times that) is waited for:
/// the bus still holds the batches, so nothing is fetched from Salesforce again and every batch
/// reaches the writer once.
#[test]
fn a_slow_writer_is_waited_for_and_no_page_is_fetched_twice() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start();
    let warehouse = pg.database("warehouse");
    let sim = Sim::start(dir.path());
    let d = Deployment::new(dir.path(), &warehouse, None);
    // A first run creates the table.
    d.start_run(None);
    d.run_until_written("first.log", 1, |_| {});
    let id = d.start_run(None);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (locker, connection) = rt.block_on(tokio_postgres::connect(&warehouse, tokio_postgres::NoTls)).unwrap();
    let connection = rt.spawn(connection);
    let written = format!("run written run={id}");
    d.run_until(
        "slow.log",
        |log| log.contains(&written),
        |log| {
            rt.block_on(locker.batch_execute("BEGIN; LOCK TABLE salesforce.account IN ACCESS EXCLUSIVE MODE")).unwrap();
            wait_for_log(log, &format!("run published run={id}"), Duration::from_secs(60));
            // `--job-poll-after 3s`: the poller looks at the quiet run several times meanwhile.
            std::thread::sleep(Duration::from_secs(10));
            let text = std::fs::read_to_string(log).unwrap();
            assert!(!text.contains(&written), "written through a locked table?\n{text}");
            rt.block_on(locker.batch_execute("COMMIT")).unwrap();
        },
    );
    drop(locker);
    let _ = rt.block_on(connection);
    let log = std::fs::read_to_string(dir.path().join("slow.log")).unwrap();
    assert!(!log.contains("the bus lost them"), "{log}");
    assert!(!log.contains("it will be delivered again"), "every batch reached the writer once:\n{log}");
    let job = d.run_json(&id)["job_id"].as_str().unwrap().to_string();
    let stats = sim.get("/__sim/stats");
    let per_locator = stats["requests_per_locator"][&job].as_object().unwrap();
    assert!(!per_locator.is_empty());
    for (locator, n) in per_locator {
        assert_eq!(n, 1, "page {locator} of job {job} was served {n} times: {stats:#}");
    }
    assert_eq!(warehouse_rows(&warehouse).len(), RECORDS);
}

/// The seed's query flow alone, ticking every 2 s. Killed (SIGKILL) while its first job POST is
/// slow (intent recorded, job not), then another user of the org creates an Account job: after
/// the restart that job is neither adopted nor aborted, the run gets a job of its own, and while
/// that run waits at `job_created` every later tick is skipped: one job of ours in 15 s.
#[test]
fn a_kill_during_a_slow_job_create_adopts_nothing_foreign_and_ticks_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path());
    let d = Deployment::with_flows(dir.path(), "", None, &[]);
    let flow =
        std::fs::read_to_string(repo().join(FLOWS[0])).unwrap().replace(r#"cron: "*/5 * * * *""#, "interval: 2s");
    assert!(flow.contains("interval: 2s"));
    std::fs::write(dir.path().join("wf/query.yaml"), flow).unwrap();
    sim.post("/__sim/faults", json!({"latency_ms": 60_000, "endpoints": ["job_create"]}).to_string());

    let log = dir.path().join("slow_create.log");
    let mut child =
        d.bulkflow(&["run"]).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.get("/__sim/stats")["requests"]["job_create"].as_u64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no job POST: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL, the POST unanswered
    child.wait().unwrap();
    sim.post("/__sim/faults", "{}".into());
    let foreign = sim.post(
        "/__sim/jobs",
        json!({"object": "Account", "query": "SELECT Id FROM Account", "operation": "query"}).to_string(),
    );
    let foreign_id = foreign["id"].as_str().unwrap().to_string();
    let runs: Value = serde_json::from_slice(&d.ok(&["runs", "list", "--json"])).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!((runs[0]["state"].as_str(), runs[0]["job_id"].as_str()), (Some("scheduled"), None));
    let id = runs[0]["id"].as_str().unwrap().to_string();
    assert!(d.run_json(&id)["checkpoints"].as_array().unwrap().iter().any(|c| c["stage"] == "job_intent"));

    d.run_until(
        "restarted.log",
        |log| log.contains("created Bulk API query job") && log.contains("tick skipped"),
        |log| {
            wait_for_log(log, "created Bulk API query job", Duration::from_secs(60));
            std::thread::sleep(Duration::from_secs(15));
        },
    );
    let runs: Value = serde_json::from_slice(&d.ok(&["runs", "list", "--json"])).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "no second run while the first waits at job_created: {runs:#?}");
    assert_eq!(runs[0]["state"], "job_created");
    let ours = runs[0]["job_id"].as_str().unwrap();
    assert_ne!(ours, foreign_id, "another user's job is never adopted");
    let stats = sim.get("/__sim/stats");
    assert_eq!(stats["jobs_created"]["Account"], 2, "the foreign job and ours, nothing else: {stats:#}");
    assert_eq!(stats["requests"]["job_abort"].as_u64().unwrap_or(0), 0, "nothing was aborted: {stats:#}");
    let text = std::fs::read_to_string(dir.path().join("restarted.log")).unwrap();
    assert!(text.contains(&format!("tick skipped: run {id} is `job_created`")), "{text}");
}

/// The delete-aware Account flows (`queryAll` on `SystemModstamp`, the run's deleted records,
/// `change_type: auto`) with the seed's unchanged listener: 100 records deleted in the org leave
/// the warehouse at the next run and leave tombstones in the lake; 50 more deleted and purged
/// from the Recycle Bin (which `queryAll` no longer sees) leave at the run after, through
/// Salesforce's deleted resource; every other row stays as it was.
#[test]
fn deletes_leave_the_warehouse_and_stay_in_the_lake_as_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start();
    let warehouse = pg.database("warehouse");
    let sim = Sim::start(dir.path());
    let d = Deployment::with_flows(dir.path(), &warehouse, None, &DELETES_FLOWS);
    let run = |since: Option<&str>, log: &str| {
        let id = d.start_run_of(DELETES_FLOW, since);
        d.run_until_written(log, 1, |_| {});
        let run = d.run_json(&id);
        assert_eq!(run["state"], "written", "{run:#}");
        run["scheduled_at"].as_str().unwrap().to_string()
    };

    let first = run(None, "run1.log");
    let before = warehouse_rows(&warehouse);
    assert_eq!(before.len(), RECORDS);
    assert!(lake_contents(&d.dir.join("lake")).deleted.is_empty());

    let deleted = ids(&sim.post("/__sim/delete", json!({"object": "Account", "count": 100}).to_string()));
    assert_eq!(deleted.len(), 100);
    // Deletes are reported by the second; the job must come after them to count them.
    std::thread::sleep(Duration::from_millis(1100));
    let second = run(Some(&first), "run2.log");
    let rows = warehouse_rows(&warehouse);
    let mut expected = before.clone();
    expected.retain(|id, _| !deleted.contains(id));
    same(&rows, &expected, "exactly the deleted records left the warehouse; the rest is unchanged");
    let lake = lake_contents(&d.dir.join("lake"));
    assert_eq!(lake.deleted, deleted, "the lake holds a tombstone of each delete");
    assert_eq!(lake.ids.len(), RECORDS, "and every row it ever got");

    let purged = ids(&sim.post("/__sim/delete", json!({"object": "Account", "count": 50}).to_string()));
    sim.post("/__sim/purge", json!({"object": "Account"}).to_string());
    let in_bin = sim.post("/__sim/query?all=true", "SELECT Id FROM Account WHERE IsDeleted = true".into());
    assert_eq!(in_bin, json!([]), "the purge emptied the Recycle Bin");
    std::thread::sleep(Duration::from_millis(1100));
    run(Some(&second), "run3.log");
    let rows = warehouse_rows(&warehouse);
    expected.retain(|id, _| !purged.contains(id));
    same(&rows, &expected, "the purged records left too, and nothing else");
    assert_eq!(rows.keys().cloned().collect::<BTreeSet<_>>(), sim.accounts().keys().cloned().collect());
    let lake = lake_contents(&d.dir.join("lake"));
    assert_eq!(lake.deleted, deleted.union(&purged).cloned().collect(), "tombstones of the purged records too");
}

/// When Salesforce no longer reports deletes as far back as the run's window (here its `deleted`
/// resource keeps 30 minutes, and the flow looks back an hour), the run reads every live `Id` by a
/// Bulk job of its own and the warehouse drops the rows outside that set: records deleted and
/// purged from the Recycle Bin leave, as do those still in the bin (their tombstones come through
/// `queryAll` too); nothing else changes, the sweep job's own results are never exported as
/// records, and the lake holds no row of the live-Id set.
#[test]
fn deletes_past_what_salesforce_reports_are_reconciled_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start();
    let warehouse = pg.database("warehouse");
    let sim = Sim::start_with(dir.path(), &["--deleted-window", "30m"]);
    let d = Deployment::with_flows(dir.path(), &warehouse, None, &DELETES_FLOWS);
    let first = d.start_run_of(DELETES_FLOW, None);
    d.run_until_written("run1.log", 1, |_| {});
    assert_eq!(d.run_json(&first)["state"], "written");
    let before = warehouse_rows(&warehouse);
    assert_eq!(before.len(), RECORDS);

    let purged = ids(&sim.post("/__sim/delete", json!({"object": "Account", "count": 60}).to_string()));
    sim.post("/__sim/purge", json!({"object": "Account"}).to_string());
    let binned = ids(&sim.post("/__sim/delete", json!({"object": "Account", "count": 40}).to_string()));
    std::thread::sleep(Duration::from_millis(1100));
    let scheduled = d.run_json(&first)["scheduled_at"].as_str().unwrap().to_string();
    let second = d.start_run_of(DELETES_FLOW, Some(&scheduled));
    d.run_until_written("run2.log", 1, |_| {});
    let run = d.run_json(&second);
    assert_eq!(run["state"], "written", "{run:#}");
    let log = std::fs::read_to_string(dir.path().join("run2.log")).unwrap();
    assert!(log.contains("reconciling by Id"), "the run says why it reads every Id:\n{log}");
    assert!(log.contains("swept the table by its live Ids"), "{log}");

    let rows = warehouse_rows(&warehouse);
    let mut expected = before.clone();
    expected.retain(|id, _| !purged.contains(id) && !binned.contains(id));
    same(&rows, &expected, "the purged and the binned records left; every other row is as it was");
    assert_eq!(rows.keys().cloned().collect::<BTreeSet<_>>(), sim.accounts().keys().cloned().collect());
    let lake = lake_contents(&d.dir.join("lake"));
    assert_eq!(lake.deleted, binned, "tombstones of what queryAll still returned, and no live-Id rows");
    assert_eq!(lake.ids.len(), RECORDS);
}

/// The delete-aware Account query flow, the seed's listener and the PostgreSQL writer.
const DELETES_FLOW: &str = "salesforce_bulkapi_deletes_query_account";
const DELETES_FLOWS: [&str; 3] = [
    "workflows/account/salesforce_bulkapi_deletes_query_account.yaml",
    "workflows/seed/salesforce_bulkapi_job_listener.yaml",
    "workflows/postgres/salesforce_bulkapi_writer_account_postgres.yaml",
];

/// The `ids` of a `/__sim/delete` answer.
fn ids(answer: &Value) -> BTreeSet<String> {
    answer["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect()
}

/// Asserts two `Id` → value maps are equal, naming only what differs (thousands of rows).
fn same(got: &BTreeMap<String, String>, want: &BTreeMap<String, String>, what: &str) {
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).take(5).collect();
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    let changed: Vec<&String> =
        got.iter().filter(|(k, v)| want.get(*k).is_some_and(|w| w != *v)).map(|(k, _)| k).take(5).collect();
    assert!(
        extra.is_empty() && missing.is_empty() && changed.is_empty(),
        "{what}: {} rows, {} expected; extra {extra:?}, missing {missing:?}, changed {changed:?}",
        got.len(),
        want.len()
    );
}
