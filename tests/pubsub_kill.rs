//! The durable Pub/Sub consumer under SIGKILL, with real processes (`bulkflow sim serve` and
//! `bulkflow run` on the seed's listener flow): an event that arrived but had not finished its flow
//! is delivered again after a restart and processed once; an event that finished is not delivered
//! again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkflow_engine::bus::ConsumerSpec;
use bulkflow_engine::bus::registry::BusRegistry;
use bulkflow_engine::bus::wire::{self, Part};
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::event::EventData;
use bulkflow_engine::salesforce::ClientSettings;
use bulkflow_engine::salesforce::Clients;
use bulkflow_engine::salesforce::bulk::CreateJob;
use bulkflow_engine::salesforce::job_create;
use bulkflow_engine::tasks::salesforce_bulkapi_query_job::config::{ColumnDelimiter, LineEnding, QueryOperation};
use serde_json::Value;

#[path = "support/sim_process.rs"]
mod sim_process;

use sim_process::SimProcess;

const ACCOUNTS: usize = 120;
const LISTENER: &str = "workflows/seed/salesforce_bulkapi_job_listener.yaml";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Sim {
    _process: SimProcess,
    host: String,
}

/// `bulkflow sim serve`, holding `GET /jobs/query/{id}` for `hold`, so the listener's
/// `get_job_info` keeps an event mid-flow.
fn sim(dir: &Path, hold: Duration) -> Sim {
    let records = format!("Account={ACCOUNTS}");
    let latency = format!("{}ms", hold.as_millis());
    let process = SimProcess::start(
        dir,
        &["--records", &records, "--job-latency", "300ms", "--fault-latency", &latency, "--fault-endpoints", "job_get"],
    );
    let host = process.url.trim_start_matches("http://").to_string();
    Sim { _process: process, host }
}

impl Sim {
    fn stats(&self) -> Value {
        let mut s = TcpStream::connect(&self.host).unwrap();
        write!(s, "GET /__sim/stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.host).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap()
    }

    fn job_gets(&self) -> u64 {
        self.stats()["requests"]["job_get"].as_u64().unwrap_or(0)
    }
}

fn run(dir: &Path, log: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .current_dir(dir)
        .args(["run", "--workflows"])
        .arg(repo().join(LISTENER))
        .arg("--resources")
        .arg(repo().join("resources"))
        .args(["--state", "state", "--foreign-jobs", "include", "--credentials-root"])
        // Absolute: the key path the simulator wrote is absolute and already under it.
        .arg(dir.join("creds"))
        .args(["--control-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env_remove("NATS_URL")
        .env_remove("BULKFLOW_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what} (the logs are run*.log and sim.log)");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_has(dir: &Path, log: &str, text: &str) -> bool {
    std::fs::read_to_string(dir.join(log)).unwrap_or_default().contains(text)
}

fn sigkill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn stop(child: &mut Child) {
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
}

/// A job created as another tool would (the flow runs with `--foreign-jobs include`).
fn create_job(dir: &Path) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let clients = Clients::new(CredentialsRoot::new(Some(dir.join("creds"))), "63.0", ClientSettings::default());
        let client = clients.get(Path::new("/etc/sfdc/credentials.json")).unwrap();
        let job = CreateJob {
            soql: "SELECT Id, Name FROM Account",
            operation: QueryOperation::Query,
            column_delimiter: ColumnDelimiter::Comma,
            line_ending: LineEnding::Lf,
        };
        job_create::create_job_unrecorded(&client, &job).await.unwrap().id
    })
}

/// Every batch on the embedded bus under `state/`: (event id, job id, rows).
fn bus_batches(dir: &Path) -> Vec<(String, String, usize)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let registry = Arc::new(BusRegistry::new(Some(dir.join("state")), CredentialsRoot::new(None)));
        let bus = registry.bus("", None).await.unwrap();
        let spec = ConsumerSpec {
            stream: "salesforce_bulkapi".into(),
            durable_name: format!("reader{}", rand_suffix()),
            filter_subject: "salesforce_bulkapi.>".into(),
            ack_wait: Duration::from_secs(60),
            max_deliver: None,
            max_ack_pending: 10_000,
        };
        let mut consumer = bus.consumer(&spec).await.unwrap();
        let mut out = Vec::new();
        loop {
            let messages = consumer.fetch(100, Duration::from_millis(300)).await.unwrap();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let part = Part::from_message(&m.headers, m.payload.clone(), "x").unwrap();
                let event = wire::assemble(&[part], &m.subject).unwrap();
                let EventData::Arrow(batch) = &event.data else { panic!("not an Arrow batch") };
                let job = event.meta["job_id"].as_str().unwrap().to_string();
                out.push((event.id.clone(), job, batch.num_rows()));
            }
        }
    })
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn sigkill_mid_flow_redelivers_once_and_after_completion_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sim = sim(dir, Duration::from_secs(3));

    // Life 1: the job's JOB_STATE events pass (filtered by the seed's script, so they complete at
    // once and their replay id is stored); its FINAL event is held in get_job_info: SIGKILL there.
    let mut first = run(dir, "run1.log");
    wait_until("the subscription", Duration::from_secs(60), || log_has(dir, "run1.log", "subscribed"));
    let job = create_job(dir);
    wait_until("the FINAL event to reach get_job_info", Duration::from_secs(30), || sim.job_gets() >= 1);
    sigkill(&mut first);
    assert!(sim.stats()["pages_served"].get(&job).is_none(), "life 1 never got to the results");
    let gets_in_life_1 = sim.job_gets();

    // Life 2: the FINAL event is delivered again (a second get_job_info) and runs to the end.
    let mut second = run(dir, "run2.log");
    wait_until("the redelivered event to fetch the results", Duration::from_secs(60), || {
        sim.stats()["pages_served"].get(&job).is_some()
    });
    let gets_after_life_2 = sim.job_gets();
    assert!(gets_after_life_2 > gets_in_life_1, "delivered again after the restart");
    // Fetching and publishing 120 rows takes milliseconds; if the flow had not completed, life 3
    // would see the event again and the assertions below would fail.
    std::thread::sleep(Duration::from_secs(3));
    sigkill(&mut second);

    // Life 3: nothing is delivered again.
    let mut third = run(dir, "run3.log");
    wait_until("the subscription", Duration::from_secs(60), || log_has(dir, "run3.log", "subscribed"));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(sim.job_gets(), gets_after_life_2, "a completed event is not delivered again");
    stop(&mut third);

    // Processed once: the job's records are on the bus exactly once, fetched once.
    let batches = bus_batches(dir);
    assert!(batches.iter().all(|(_, j, _)| *j == job), "{batches:?}");
    let mut ids: Vec<&str> = batches.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), batches.len(), "no batch twice: {batches:?}");
    assert_eq!(batches.iter().map(|(_, _, n)| n).sum::<usize>(), ACCOUNTS);
    assert_eq!(sim.stats()["pages_served"][&job], 1, "results fetched once");
}
