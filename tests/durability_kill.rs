//! The SIGKILL matrix: `bulkflow run` (built with `--features failpoints`) on the seed's three
//! flows plus the PostgreSQL writer variant, a local Parquet lake, a private PostgreSQL and the
//! simulator's BigQuery fake, against `bulkflow sim serve` with several results pages, once on the
//! embedded bus and once on nats-server (the seed's stream settings). For each fault point the
//! engine kills itself there (`BULKFLOW_CRASH_AT`), is started again without it, and the export
//! must settle with nothing lost and nothing doubled: the lake's and the warehouse's `Id`s equal
//! the org's, no `Id` twice, no staging file left, one Bulk job per run, no page served more than
//! twice, the run `written` and the watermark at its scheduled time. Then five kills at seeded
//! random moments per bus (`BULKFLOW_KILL_SEED=N` reruns one seed).
//!
//! Built only with the feature (`scripts/test.sh` runs it so); one process start per point.
//! `BULKFLOW_MATRIX_RECORDS` sets the org's size (default 2,000; `scripts/durability-large.sh`
//! runs 200,000).

#![cfg(feature = "failpoints")]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulkflow_testkit::nats::NatsServer;
use bulkflow_testkit::postgres::Postgres;
use serde_json::{Value, json};

#[path = "support/engine_run.rs"]
mod engine_run;

#[path = "support/lake.rs"]
mod lake_support;
#[path = "support/sim_process.rs"]
mod sim_process;
#[path = "support/tmux.rs"]
mod tmux;

use lake_support::{lake_contents, lake_ids};

use sim_process::SimProcess;

/// Five results pages, so every per-page and per-batch point is reached more than once.
fn records() -> usize {
    std::env::var("BULKFLOW_MATRIX_RECORDS").ok().and_then(|n| n.parse().ok()).unwrap_or(2000)
}
const PROJECT: &str = "bulkflow-durability";
const QUERY_FLOW: &str = "salesforce_bulkapi_query_account";
const FLOWS: [&str; 4] = [
    "workflows/seed/salesforce_bulkapi_query_account.yaml",
    "workflows/seed/salesforce_bulkapi_job_listener.yaml",
    "workflows/seed/salesforce_bulkapi_writer_account.yaml",
    "workflows/postgres/salesforce_bulkapi_writer_account_postgres.yaml",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bus an export runs on.
#[derive(Clone, Copy, Debug)]
enum BusKind {
    Embedded,
    Nats,
}

struct Setup {
    dir: tempfile::TempDir,
    sim: SimProcess,
    bigquery: String,
    warehouse: String,
    /// In a cell: a fault test kills and restarts it while the engine runs.
    nats: Option<std::cell::RefCell<NatsServer>>,
    /// `BULKFLOW_FAIL_WHILE` for every command: error points a fault test turns on and off.
    fail_while: Option<String>,
}

impl Setup {
    fn new(pg: &Postgres, name: &str, bus: BusKind) -> Setup {
        Setup::with_job_latency(pg, name, bus, "300ms")
    }

    /// `job_latency`: how long the simulator's jobs take to complete (a fault test needs time to
    /// act while a job runs).
    fn with_job_latency(pg: &Postgres, name: &str, bus: BusKind, job_latency: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("wf")).unwrap();
        // The flows unchanged but for the query flow's cron: its first run fires at once on a
        // fresh store, and a yearly tick keeps a second run (a second job, a second set of files)
        // out of the checks. On nats-server the messages a killed process held come back only
        // after their ack wait: the writers' 120 s is cut to 5 s there, so a restart is not spent
        // waiting.
        for flow in FLOWS {
            let file = Path::new(flow).file_name().unwrap();
            let mut text = std::fs::read_to_string(repo().join(flow))
                .unwrap()
                .replace(r#"cron: "*/5 * * * *""#, r#"cron: "0 0 1 1 *""#);
            if matches!(bus, BusKind::Nats) {
                text = text.replace(r#"ack_timeout: "120s""#, r#"ack_timeout: "5s""#);
            }
            std::fs::write(dir.path().join("wf").join(file), text).unwrap();
        }
        let gcp = dir.path().join("creds/etc/gcp");
        std::fs::create_dir_all(&gcp).unwrap();
        let key = json!({"type": "service_account", "project_id": PROJECT, "client_email": "d@x.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token"});
        std::fs::write(gcp.join("credentials.json"), key.to_string()).unwrap();
        let schema = repo().join("resources/salesforce/schema_account.json");
        let table = format!("{PROJECT}.salesforce.account={}", schema.display());
        let (org, page) = (format!("Account={}", records()), (records() / 5).to_string());
        let state = dir.path().join("sim").display().to_string();
        let bigquery = format!("127.0.0.1:{}", bulkflow_testkit::free_port());
        let sim = SimProcess::start(
            dir.path(),
            &[
                "--records",
                &org,
                "--max-page-records",
                &page,
                "--job-latency",
                job_latency,
                "--state",
                &state,
                "--bigquery-table",
                &table,
                "--bigquery-listen",
                &bigquery,
            ],
        );
        let nats = matches!(bus, BusKind::Nats).then(|| std::cell::RefCell::new(NatsServer::start()));
        Setup { dir, sim, bigquery, warehouse: pg.database(name), nats, fail_while: None }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// nats-server's URL, or empty for the embedded bus.
    fn nats_url(&self) -> String {
        self.nats.as_ref().map(|n| n.borrow().url()).unwrap_or_default()
    }

    fn bulkflow(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkflow"));
        cmd.current_dir(self.path())
            .args(args)
            .arg("--workflows")
            .arg(self.path().join("wf"))
            .arg("--resources")
            .arg(repo().join("resources"))
            .arg("--state")
            .arg(self.path().join("state"))
            .arg("--credentials-root")
            .arg(self.path().join("creds"))
            .env("RUST_LOG", "info")
            .env_remove("BULKFLOW_CONFIG")
            .env_remove("BULKFLOW_CRASH_AT")
            .env("GCS_BUCKET_PATH", self.path().join("lake"))
            .env("GCP_PROJECT_ID", PROJECT)
            .env("BIGQUERY_EMULATOR_HOST", &self.bigquery)
            .env("WAREHOUSE_URL", &self.warehouse)
            .env("NATS_URL", self.nats_url());
        match &self.fail_while {
            Some(spec) => cmd.env("BULKFLOW_FAIL_WHILE", spec),
            None => cmd.env_remove("BULKFLOW_FAIL_WHILE"),
        };
        cmd
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.bulkflow(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `bulkflow run` with the crash armed at `point`: returns once it killed itself there.
    fn crash_at(&self, point: &str, extra: &[&str]) {
        let log = self.path().join("crash.log");
        let mut child = self
            .bulkflow(&[&["run", "--job-poll-after", "2s"], extra].concat())
            .env("BULKFLOW_CRASH_AT", point)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(90) + Duration::from_millis(records() as u64);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{point}: never reached in 90 s; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(status.signal(), Some(9), "{point}: the engine did not SIGKILL itself ({status}); log:\n{text}");
        let name = point.split('@').next().unwrap();
        assert!(text.contains(&format!("crash point {name} reached")), "{point}: {text}");
    }

    /// `bulkflow run` until its log satisfies `done`, then SIGTERM; its log.
    fn run_until(&self, log: &str, extra: &[&str], done: impl Fn(&str) -> bool) -> String {
        self.run_during(log, extra, done, || {})
    }

    /// `run_until`, calling `during` once the engine is spawned (it may block: the engine runs on).
    fn run_during(&self, log: &str, extra: &[&str], done: impl Fn(&str) -> bool, during: impl FnOnce()) -> String {
        let within = Duration::from_secs(120) + Duration::from_millis(records() as u64);
        let poll: &[&str] = if extra.contains(&"--job-poll-after") { &[] } else { &["--job-poll-after", "2s"] };
        let engine = self.bulkflow(&[&["run"], poll, extra].concat());
        engine_run::run_until(engine, &self.path().join(log), within, done, |_| during())
    }

    /// Runs until the query flow has a `written` run and none in flight (asked through the
    /// running engine's control API, as an operator would).
    fn settle(&self, log: &str, extra: &[&str]) -> String {
        self.settle_during(log, extra, || {})
    }

    /// `settle`, calling `during` once the engine is spawned. Runs that `failed` count as settled
    /// (a fault test makes some fail on purpose; `check` says which may).
    fn settle_during(&self, log: &str, extra: &[&str], during: impl FnOnce()) -> String {
        let done = |text: &str| {
            if !text.contains("starting flows") {
                return false;
            }
            let runs = self.query_runs();
            runs.iter().any(|r| r["state"] == "written")
                && runs.iter().all(|r| r["state"] == "written" || r["state"] == "failed")
        };
        self.run_during(log, extra, done, during)
    }

    /// The query flow's runs as `bulkflow runs list --json` shows them (through the running
    /// engine's control API when one runs); empty when that fails.
    fn query_runs(&self) -> Vec<Value> {
        let Ok(out) = self.bulkflow(&["runs", "list", "--json"]).output() else { return Vec::new() };
        let Ok(Value::Array(runs)) = serde_json::from_slice::<Value>(&out.stdout) else { return Vec::new() };
        runs.into_iter().filter(|r| r["flow"] == QUERY_FLOW).collect()
    }

    fn sim_get(&self, path: &str) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { reqwest::get(format!("{}{path}", self.sim.url)).await.unwrap().json().await.unwrap() })
    }

    /// `POST /__sim/faults` with `faults` (everything left out is no fault).
    fn set_faults(&self, faults: Value) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url = format!("{}/__sim/faults", self.sim.url);
        let status =
            rt.block_on(async { reqwest::Client::new().post(url).json(&faults).send().await.unwrap().status() });
        assert!(status.is_success(), "faults {faults}: {status}");
    }

    fn org_ids(&self) -> BTreeSet<String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let rows: Value = rt.block_on(async {
            let r = reqwest::Client::new()
                .post(format!("{}/__sim/query", self.sim.url))
                .body("SELECT Id FROM Account")
                .send()
                .await
                .unwrap();
            r.json().await.unwrap()
        });
        rows.as_array().unwrap().iter().map(|r| r[0].as_str().unwrap().to_string()).collect()
    }

    fn warehouse_ids(&self) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&self.warehouse, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            let rows = client.query(r#"SELECT "Id" FROM salesforce.account"#, &[]).await.unwrap();
            rows.iter().map(|r| r.get::<_, String>(0)).collect()
        })
    }

    fn bigquery_rows(&self) -> usize {
        let url = format!(
            "http://{}/bigquery/v2/projects/{PROJECT}/datasets/salesforce/tables/account/data?maxResults=1",
            self.bigquery
        );
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let page: Value = rt.block_on(async { reqwest::get(&url).await.unwrap().json().await.unwrap() });
        page["totalRows"].as_str().unwrap_or("0").parse().unwrap()
    }

    /// How many times the bus stored each batch's messages (by event id and part), read through a
    /// durable consumer of its own, as any reader of the stream would.
    fn bus_copies(&self) -> BTreeMap<(String, String), usize> {
        use bulkflow_engine::bus::ConsumerSpec;
        use bulkflow_engine::bus::registry::BusRegistry;
        use bulkflow_engine::credentials::CredentialsRoot;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let registry = BusRegistry::new(Some(self.path().join("state")), CredentialsRoot::new(None));
            let url = self.nats_url();
            let bus = registry.bus(&url, None).await.unwrap();
            let spec = ConsumerSpec {
                stream: "salesforce_bulkapi".into(),
                durable_name: "durability_audit".into(),
                filter_subject: "salesforce_bulkapi.>".into(),
                ack_wait: Duration::from_secs(60),
                max_deliver: None,
                max_ack_pending: 1_000_000,
            };
            let mut consumer = bus.consumer(&spec).await.unwrap();
            let mut copies = BTreeMap::new();
            loop {
                let got = consumer.fetch(256, Duration::from_millis(500)).await.unwrap();
                if got.is_empty() {
                    return copies;
                }
                for m in got {
                    let key = (
                        m.header("Bulkflow-Event-Id").unwrap_or_default().to_owned(),
                        m.header("Bulkflow-Part").unwrap_or("0").to_owned(),
                    );
                    *copies.entry(key).or_default() += 1;
                    m.ack.ack().await.unwrap();
                }
            }
        })
    }

    /// Every check the matrix makes once the export settled.
    fn check(&self, point: &str) {
        self.check_runs(point, 0);
    }

    /// `check`, where the first `failed` runs (by schedule) were failed on purpose and the runs
    /// after them covered their windows: every check holds for the data, the failed runs say so,
    /// and the newest run is `written`.
    fn check_runs(&self, point: &str, failed: usize) {
        let org = self.org_ids();
        assert_eq!(org.len(), records());
        let (lake, rows, staging) = lake(&self.path().join("lake"));
        assert_eq!(lake, org, "{point}: the lake holds every Id of the org");
        assert_eq!(rows, org.len(), "{point}: no Id twice in the lake");
        assert!(staging.is_empty(), "{point}: staging files left in the lake: {staging:?}");
        let warehouse = self.warehouse_ids();
        assert_eq!(warehouse.len(), org.len(), "{point}: no Id twice (or missing) in PostgreSQL");
        assert_eq!(warehouse.into_iter().collect::<BTreeSet<_>>(), org, "{point}: PostgreSQL holds every Id");
        assert_eq!(self.bigquery_rows(), org.len(), "{point}: BigQuery holds one row per Id");
        let copies = self.bus_copies();
        assert!(!copies.is_empty(), "{point}: the bus holds the run's batches");
        let doubled: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
        assert!(doubled.is_empty(), "{point}: the bus stored these batches more than once: {doubled:?}");

        let runs = self.json(&["runs", "list", "--json"]);
        let runs: Vec<&Value> = runs.as_array().unwrap().iter().filter(|r| r["flow"] == QUERY_FLOW).collect();
        let with_jobs = runs.iter().filter(|r| r["job_id"].is_string()).count() as u64;
        let stats = self.sim_get("/__sim/stats");
        assert_eq!(
            stats["jobs_created"]["Account"].as_u64(),
            Some(with_jobs),
            "{point}: one Bulk job per run: {stats:#}"
        );
        let logs = || {
            ["crash.log", "settle.log"]
                .iter()
                .map(|l| std::fs::read_to_string(self.path().join(l)).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n----\n")
        };
        for (job, locators) in stats["requests_per_locator"].as_object().unwrap() {
            for (locator, n) in locators.as_object().unwrap() {
                assert!(
                    n.as_u64().unwrap() <= 2,
                    "{point}: job {job} page {locator} served {n} times; logs:\n{}",
                    logs()
                );
            }
        }
        let mut by_schedule = runs.clone();
        by_schedule.sort_by_key(|r| r["scheduled_at"].as_str().unwrap().to_string());
        for (i, run) in by_schedule.iter().enumerate() {
            let want = if i < failed { "failed" } else { "written" };
            assert_eq!(run["state"], want, "{point}: run {i} of {}: {run:#}", by_schedule.len());
        }
        assert!(by_schedule.len() > failed, "{point}: no run after the failed ones: {by_schedule:#?}");
        let first = by_schedule[0];
        let flows = self.json(&["flows", "status", "--json"]);
        let query = flows.as_array().unwrap().iter().find(|f| f["flow"] == QUERY_FLOW);
        let scheduled = chrono::DateTime::parse_from_rfc3339(first["scheduled_at"].as_str().unwrap()).unwrap();
        let newest_written = runs
            .iter()
            .filter(|r| r["state"] == "written")
            .map(|r| chrono::DateTime::parse_from_rfc3339(r["scheduled_at"].as_str().unwrap()).unwrap())
            .max()
            .unwrap_or(scheduled);
        assert_eq!(
            query.map(|q| q["watermark"].clone()),
            Some(json!(newest_written.timestamp())),
            "{point}: the watermark is the newest written run's scheduled time: {flows:#}"
        );
    }
}

/// The distinct `Id`s in the lake's Parquet files, how many rows they hold in all, and any file
/// that is not a finished Parquet file (a staging file left by a crash).
fn lake(dir: &Path) -> (BTreeSet<String>, usize, Vec<PathBuf>) {
    let lake = lake_contents(dir);
    (lake.ids, lake.rows, lake.other_files)
}

/// The points an export passes, each with the hit to crash on (`@2`: the second page, batch or
/// write, so some work is done before the crash and some after).
const EXPORT_POINTS: [&str; 16] = [
    "scheduler.run_opened",
    "query.intent_recorded",
    "query.job_created",
    "pubsub.event_received",
    "listener.event_received",
    "results.mid_page@2",
    "results.page_parsed@2",
    "publish.acked@2",
    "publish.recorded@2",
    "lake.staged@2",
    "lake.renamed@2",
    "warehouse.postgres_committed@2",
    "warehouse.bigquery_appended@2",
    "writer.recorded@2",
    "ledger.written",
    "results.last_page_recorded",
];

fn crash_then_settle(point: &str, bus: BusKind) {
    let started = Instant::now();
    let pg = Postgres::start();
    let setup = Setup::new(&pg, &point.replace(['.', '@'], "_"), bus);
    let ready = started.elapsed();
    setup.crash_at(point, &[]);
    let crashed = started.elapsed();
    setup.settle("settle.log", &[]);
    eprintln!("{point} on {bus:?}: setup {ready:?}, crashed at {crashed:?}, settled at {:?}", started.elapsed());
    setup.check(&format!("{point} on {bus:?}"));
}

/// Every point a `bulkflow debug failpoints` lists is covered here, by the export or by the
/// compaction case.
#[test]
fn the_matrix_covers_every_listed_point() {
    let out = Command::new(env!("CARGO_BIN_EXE_bulkflow")).args(["debug", "failpoints"]).output().unwrap();
    assert!(out.status.success());
    let listed: BTreeSet<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    let mut covered: BTreeSet<String> = EXPORT_POINTS.iter().map(|p| p.split('@').next().unwrap().to_owned()).collect();
    covered.insert("retention.mid_compaction".into());
    assert_eq!(listed, covered);
    assert!(listed.len() >= 14);
}

macro_rules! matrix {
    ($($test:ident => $index:expr),* $(,)?) => {
        /// Every point with the embedded bus.
        mod embedded {
            $(
                #[test]
                fn $test() {
                    super::crash_then_settle(super::EXPORT_POINTS[$index], super::BusKind::Embedded);
                }
            )*
        }
        /// Every point with nats-server as the bus.
        mod nats {
            $(
                #[test]
                fn $test() {
                    super::crash_then_settle(super::EXPORT_POINTS[$index], super::BusKind::Nats);
                }
            )*
        }
    };
}

matrix! {
    kill_after_the_run_is_opened => 0,
    kill_after_the_job_intent_is_recorded => 1,
    kill_after_the_job_post_answered => 2,
    kill_after_a_pubsub_event_arrives => 3,
    kill_after_the_completion_event_is_received => 4,
    kill_mid_page => 5,
    kill_after_a_page_is_parsed => 6,
    kill_after_a_batch_is_published => 7,
    kill_after_a_publish_is_recorded => 8,
    kill_mid_parquet_write => 9,
    kill_after_the_parquet_rename => 10,
    kill_after_a_postgres_commit => 11,
    kill_after_a_bigquery_append => 12,
    kill_after_a_writer_recorded_a_batch => 13,
    kill_after_the_run_is_written => 14,
    kill_after_the_last_page_is_recorded => 15,
}

/// Faults that are not crashes, through the whole export: DURABILITY.md's second table.
#[path = "durability/faults.rs"]
mod faults;

/// A kill in the middle of retention compaction leaves a store that opens and a watermark that
/// stays: an export finishes, then a start with a 1 s retention compacts it and dies there.
#[test]
fn kill_during_retention_compaction() {
    let pg = Postgres::start();
    let setup = Setup::new(&pg, "compaction", BusKind::Embedded);
    setup.settle("first.log", &[]);
    setup.check("before compaction");
    let watermark = |s: &Setup| {
        let flows = s.json(&["flows", "status", "--json"]);
        flows.as_array().unwrap().iter().find(|f| f["flow"] == QUERY_FLOW).unwrap()["watermark"].clone()
    };
    let before = watermark(&setup);
    assert!(before.is_i64(), "{before}");
    std::thread::sleep(Duration::from_millis(1500));
    setup.crash_at("retention.mid_compaction", &["--retention", "1s"]);
    let runs = setup.json(&["runs", "list", "--json"]);
    assert!(
        runs.as_array().unwrap().iter().all(|r| r["state"] != "written"),
        "the written run was compacted: {runs:#}"
    );
    let log = setup.run_until("after.log", &["--retention", "1s"], |t| t.contains("starting"));
    assert!(!log.contains("ERROR"), "{log}");
    assert_eq!(watermark(&setup), before, "compaction keeps the watermark");
    assert_eq!(lake_ids(&setup.path().join("lake")), setup.org_ids());
    let (_, _, staging) = lake(&setup.path().join("lake"));
    assert!(staging.is_empty(), "{staging:?}");
}

/// `BULKFLOW_CRASH_AT` works for `bulkflow demo` too, and the demo started again on the same
/// directory finishes the export: every object in the lake (no staging file left) and the
/// warehouse. The demo's simulator lives in the killed process, so these also show that a
/// persisted org restarted at any moment keeps its jobs' results.
#[test]
fn the_demo_killed_mid_export_finishes_when_started_again() {
    for point in ["query.job_created", "results.last_page_recorded", "lake.staged@3"] {
        demo_killed_then_restarted(point);
    }
}

fn demo_killed_then_restarted(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let demo = |crash: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkflow"));
        cmd.arg("demo").arg("--dir").arg(&d).args(["--records", "2000", "--until-idle"]);
        cmd.env_remove("NATS_URL").env_remove("BULKFLOW_CONFIG").env_remove("BULKFLOW_CRASH_AT");
        if let Some(point) = crash {
            cmd.env("BULKFLOW_CRASH_AT", point);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // A demo that does not finish fails the test instead of hanging it.
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().unwrap()
    };
    let crashed = demo(Some(point));
    assert_eq!(crashed.status.signal(), Some(9), "{point}: {}", String::from_utf8_lossy(&crashed.stderr));
    let finished = demo(None);
    let log = std::fs::read_to_string(d.join("bulkflow.log")).unwrap_or_default();
    assert!(
        finished.status.success(),
        "{point}: {:?}\n{}\n{}\n{}",
        finished.status,
        String::from_utf8_lossy(&finished.stdout),
        String::from_utf8_lossy(&finished.stderr),
        &log[log.len().saturating_sub(6000)..]
    );
    check_demo(&d, point, 2000);
}

/// What a finished demo in `d` must hold: every object's `records` Ids in the lake once each, no
/// staging file, and one warehouse row per live Id; then the demo's warehouse is stopped.
fn check_demo(d: &Path, point: &str, records: usize) {
    let url = std::fs::read_to_string(d.join("warehouse.url")).unwrap().trim().to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for object in ["account", "contact", "opportunity"] {
        let contents = lake_contents(&d.join("lake/salesforce").join(object));
        let (ids, rows, staging) = (&contents.ids, contents.rows, &contents.other_files);
        // The demo's org deletes a few records a minute; the warehouse follows them.
        let live = ids.difference(&contents.deleted).count();
        assert!(ids.len() >= records, "{point}: {object}: {} Ids in the lake", ids.len());
        // A record changed between two runs is in the lake once per run (the demo's org changes
        // records, and a demo that outlives a 5-minute tick runs again), never twice in one.
        for (job, (job_rows, job_ids)) in lake_rows_by_job(&d.join("lake/salesforce").join(object)) {
            assert_eq!(job_rows, job_ids.len(), "{point}: {object}: no live Id twice in job {job}'s files");
        }
        assert!(rows >= ids.len(), "{point}: {object}");
        assert!(staging.is_empty(), "{point}: {object}: {staging:?}");
        let count: i64 = rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.query_one(&format!(r#"SELECT count(*) FROM salesforce.{object}"#), &[]).await.unwrap().get(0)
        });
        assert_eq!(count as usize, live, "{point}: {object}: one warehouse row per live Id in the lake");
    }
    let stop =
        Command::new(env!("CARGO_BIN_EXE_bulkflow")).arg("demo").arg("--dir").arg(d).arg("--stop").output().unwrap();
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
}

/// Live rows and their distinct `Id`s per export job under `dir` (a lake file's name starts with
/// its job's id). Tombstones are left out: a deleted record can come both in the job's results and
/// on the run's deleted-records page.
fn lake_rows_by_job(dir: &Path) -> BTreeMap<String, (usize, BTreeSet<String>)> {
    let mut by_job: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    for file in lake_support::files(dir).into_iter().filter(|f| lake_support::is_parquet(f)) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let entry = by_job.entry(name.split("-p").next().unwrap().to_owned()).or_default();
        for (id, _) in lake_support::parquet_rows(&file).into_iter().filter(|(_, deleted)| !deleted) {
            entry.0 += 1;
            entry.1.insert(id);
        }
    }
    by_job
}

/// splitmix64: a seeded sequence, so a failing run of random kills can be replayed exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Five SIGKILLs from outside at random moments of one export (each life lasts 0.2–2.7 s), then a
/// run that settles, then every check. The seed is printed and named in every failure;
/// `BULKFLOW_KILL_SEED=<seed> cargo test -p bulkflow --features failpoints --test durability_kill
/// random` replays it.
fn random_kills(bus: BusKind) {
    let seed = std::env::var("BULKFLOW_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("random kills on {bus:?}: BULKFLOW_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let pg = Postgres::start();
    let setup = Setup::new(&pg, "random", bus);
    let mut lives = Vec::new();
    for life in 0..5 {
        let after = Duration::from_millis(200 + rng.next() % 2500);
        let log = setup.path().join(format!("life{life}.log"));
        let mut child = setup
            .bulkflow(&["run", "--job-poll-after", "2s"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        lives.push(format!("{} ms ({status})", after.as_millis()));
    }
    setup.settle("settle.log", &[]);
    setup.check(&format!("random kills on {bus:?} with BULKFLOW_KILL_SEED={seed} after {lives:?}"));
}

#[test]
fn random_kills_on_the_embedded_bus() {
    random_kills(BusKind::Embedded);
}

#[test]
fn random_kills_on_nats() {
    random_kills(BusKind::Nats);
}
