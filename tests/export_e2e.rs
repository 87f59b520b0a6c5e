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

#[path = "support/lake.rs"]
mod lake;

use lake::lake_ids;

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
        let state = dir.join("sim").display().to_string();
        let records = format!("Account={RECORDS}");
        Sim(SimProcess::start(dir, &["--records", &records, "--job-latency", "300ms", "--state", &state]))
    }

    fn post(&self, path: &str, body: String) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let resp = reqwest::Client::new().post(format!("{}{path}", self.0.url)).body(body).send().await.unwrap();
            assert!(resp.status().is_success(), "POST {path}: {}", resp.status());
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
        std::fs::create_dir_all(dir.join("wf")).unwrap();
        for flow in FLOWS {
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
        let mut args = vec!["runs", "start", QUERY_FLOW];
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
        let path = self.dir.join(log);
        let mut child = self
            .bulkflow(&["run", "--job-poll-after", "3s"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&path).unwrap())
            .spawn()
            .unwrap();
        during(path.to_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if done(&text) {
                break;
            }
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                panic!("the engine did not get there in time; its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(child.wait().unwrap().success());
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
