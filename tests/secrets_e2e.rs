//! Secrets never leave their files: `bulkflow run` exports with each OAuth flow (JWT bearer,
//! username-password, client credentials) at `RUST_LOG=trace`, with recognisable secret values
//! (the consumer secret, the user's password, the JWT key, the warehouse URL's password, the
//! control token) and the access tokens the simulator issues; none of them may appear in the
//! engine's output, its log file, the control API's answers, `/metrics`, the state directory or
//! the lake.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulkflow_testkit::postgres::Postgres;
use serde_json::Value;

#[path = "support/engine_run.rs"]
mod engine_run;
#[path = "support/every_file.rs"]
mod every_file;
#[path = "support/sim_process.rs"]
mod sim_process;

use every_file::every_file;
use sim_process::SimProcess;

const CLIENT_SECRET: &str = "SeCrEtConsumerSecret4711";
const PASSWORD: &str = "PaSsWoRdOfTheUser0815";
const PG_PASSWORD: &str = "PgPaSsWoRdInTheUrl2342";
const CONTROL_TOKEN: &str = "CoNtRoLtOkEn9876543210";
/// Access tokens are the org id's first 15 characters, `!AQ`, then 94 more.
const TOKEN_MARKER: &str = "!AQ";

const FLOWS: [&str; 3] = [
    "workflows/seed/salesforce_bulkapi_query_account.yaml",
    "workflows/seed/salesforce_bulkapi_job_listener.yaml",
    "workflows/postgres/salesforce_bulkapi_writer_account_postgres.yaml",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn http_get(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

struct Deployment {
    dir: PathBuf,
    warehouse: String,
    metrics: u16,
    control: u16,
}

impl Deployment {
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
            .arg("--control-token-file")
            .arg(self.dir.join("control.token"))
            .env("RUST_LOG", "trace")
            .env_remove("BULKFLOW_CONFIG")
            .env("GCS_BUCKET_PATH", self.dir.join("lake"))
            .env("WAREHOUSE_URL", &self.warehouse)
            .env("NATS_URL", "");
        cmd
    }

    /// `bulkflow ARGS`, its stdout and stderr together.
    fn output(&self, args: &[&str]) -> Vec<u8> {
        let out = self.bulkflow(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        [out.stdout, out.stderr].concat()
    }
}

#[test]
fn no_secret_of_any_oauth_flow_reaches_logs_the_control_api_metrics_or_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--records",
            "Account=300",
            "--job-latency",
            "200ms",
            "--client-secret",
            CLIENT_SECRET,
            "--password",
            PASSWORD,
        ],
    );
    let pg = Postgres::start();
    // Trust auth ignores the password; it is there to be looked for.
    let warehouse =
        pg.database("warehouse").replacen("postgres://postgres@", &format!("postgres://postgres:{PG_PASSWORD}@"), 1);
    assert!(warehouse.contains(PG_PASSWORD), "{warehouse}");
    std::fs::create_dir_all(dir.path().join("wf")).unwrap();
    for flow in FLOWS {
        std::fs::copy(repo().join(flow), dir.path().join("wf").join(Path::new(flow).file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("control.token"), CONTROL_TOKEN).unwrap();
    std::fs::set_permissions(dir.path().join("control.token"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .unwrap();
    let d = Deployment {
        dir: dir.path().to_path_buf(),
        warehouse,
        metrics: bulkflow_testkit::free_port(),
        control: bulkflow_testkit::free_port(),
    };

    let creds_file = dir.path().join("creds/etc/sfdc/credentials.json");
    let jwt: Value = serde_json::from_str(&std::fs::read_to_string(&creds_file).unwrap()).unwrap();
    let key = std::fs::read_to_string(jwt["private_key_path"].as_str().unwrap()).unwrap();
    let key_line = key.lines().nth(1).unwrap().to_string();
    let mut password = jwt.clone();
    password.as_object_mut().unwrap().remove("private_key_path");
    let mut client_credentials = password.clone();
    client_credentials.as_object_mut().unwrap().remove("username");
    client_credentials.as_object_mut().unwrap().remove("password");

    let mut said: Vec<(String, Vec<u8>)> = Vec::new();
    for (flow, creds) in [("jwt", jwt), ("password", password), ("client_credentials", client_credentials)] {
        std::fs::write(&creds_file, creds.to_string()).unwrap();
        said.push((format!("runs start ({flow})"), d.output(&["runs", "start", "salesforce_bulkapi_query_account"])));
        let log = dir.path().join(format!("run-{flow}.log"));
        let engine = d.bulkflow(&["run"]);
        engine_run::run_until(engine, &log, Duration::from_secs(120), |text| text.contains("run written"), |_| {});
        said.push((format!("the engine's log ({flow})"), std::fs::read(&log).unwrap()));
        said.push((format!("runs list --json ({flow})"), d.output(&["runs", "list", "--json"])));
    }

    let stats: Value = serde_json::from_str(&http_get(&format!("{}/__sim/stats", sim.url))).unwrap();
    assert!(stats["requests"]["oauth_token"].as_u64().unwrap() >= 3, "a login per flow: {stats}");

    // A running engine's control API (on TCP, with the token) and /metrics.
    let log = dir.path().join("run-api.log");
    let mut engine = d
        .bulkflow(&[
            "run",
            "--metrics-listen",
            &format!("127.0.0.1:{}", d.metrics),
            "--control-listen",
            &format!("127.0.0.1:{}", d.control),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("control API listening on TCP") {
        assert!(
            Instant::now() < deadline && engine.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let run_id = String::from_utf8(d.output(&["runs", "list", "--json"])).unwrap();
    assert!(run_id.contains("written"), "{run_id}");
    said.push(("runs list --json (control API)".into(), run_id.into_bytes()));
    said.push(("/metrics".into(), http_get(&format!("http://127.0.0.1:{}/metrics", d.metrics)).into_bytes()));
    Command::new("kill").args(["-TERM", &engine.id().to_string()]).status().unwrap();
    assert!(engine.wait().unwrap().success());
    said.push(("the engine's log (control API)".into(), std::fs::read(&log).unwrap()));

    assert!(
        said.iter()
            .any(|(what, bytes)| what.starts_with("the engine's log")
                && String::from_utf8_lossy(bytes).contains(" TRACE ")),
        "trace logging is on"
    );
    let mut places = said;
    for file in every_file(&dir.path().join("state")).into_iter().chain(every_file(&dir.path().join("lake"))) {
        places.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    assert!(places.len() > 10, "{} places", places.len());
    for (place, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for needle in [CLIENT_SECRET, PASSWORD, PG_PASSWORD, CONTROL_TOKEN, TOKEN_MARKER, key_line.as_str()] {
            assert!(!text.contains(needle), "`{needle}` found in {place}");
        }
    }
}
