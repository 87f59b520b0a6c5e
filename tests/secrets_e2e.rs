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
#[path = "support/tmux.rs"]
mod tmux;

use every_file::every_file;
use sim_process::SimProcess;
use tmux::Tmux;

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

const NATS_TOKEN: &str = "NaTsToKeNoFtHeBuS31337";
/// The service-account key's body: the BigQuery writer reads the key file although the emulator
/// never asks for a signature.
const GCP_KEY: &str = "GcPpRiVaTeKeYbOdY271828";
const PROJECT: &str = "bulkflow-secrets";

/// `bulkflow tui` and the bus and warehouse secrets: the seed's flows unchanged, the lake and
/// BigQuery (its fake) written, records changing, the bus on nats-server first with a token, then
/// with an nkey. No
/// secret may appear in the engine's log, the TUI's screens (the runs table and a run's detail),
/// `runs list --json`, the state directory or the lake.
#[test]
fn no_nats_or_gcp_secret_reaches_the_tui_logs_or_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bigquery = format!("127.0.0.1:{}", bulkflow_testkit::free_port());
    let schema = repo().join("resources/salesforce/schema_account.json");
    let table = format!("{PROJECT}.salesforce.account={}", schema.display());
    let _sim = SimProcess::start(
        d,
        &[
            "--records",
            "Account=300",
            "--change-rate",
            "5",
            "--job-latency",
            "200ms",
            "--bigquery-listen",
            &bigquery,
            "--bigquery-table",
            &table,
        ],
    );
    std::fs::create_dir_all(d.join("wf")).unwrap();
    for flow in [
        "workflows/seed/salesforce_bulkapi_query_account.yaml",
        "workflows/seed/salesforce_bulkapi_job_listener.yaml",
        "workflows/seed/salesforce_bulkapi_writer_account.yaml",
    ] {
        std::fs::copy(repo().join(flow), d.join("wf").join(Path::new(flow).file_name().unwrap())).unwrap();
    }
    let private = |path: &Path, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    };
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": format!("-----BEGIN PRIVATE KEY-----\n{GCP_KEY}\n-----END PRIVATE KEY-----\n"),
        "client_email": "bulkflow@bulkflow-secrets.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token"
    });
    private(&d.join("creds/etc/gcp/credentials.json"), &key.to_string());
    let nats_file = d.join("creds/etc/nats/credentials.json");

    let bulkflow = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkflow"));
        cmd.current_dir(d)
            .args(args)
            .args(["--workflows", "wf", "--state", "state"])
            .arg("--resources")
            .arg(repo().join("resources"))
            .arg("--credentials-root")
            .arg(d.join("creds"))
            .env("RUST_LOG", "trace")
            .env_remove("BULKFLOW_CONFIG")
            .env_remove("BULKFLOW_CONTROL_TOKEN")
            .env("GCS_BUCKET_PATH", d.join("lake"))
            .env("GCP_PROJECT_ID", PROJECT)
            .env("BIGQUERY_EMULATOR_HOST", &bigquery)
            // Empty: the bus url comes from the NATS credentials file, beside its secret.
            .env("NATS_URL", "");
        cmd
    };
    let output = |args: &[&str]| {
        let out = bulkflow(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        [out.stdout, out.stderr].concat()
    };
    let all_written = |at_least: usize| {
        let Ok(out) = bulkflow(&["runs", "list", "--json"]).output() else { return false };
        let Ok(runs) = serde_json::from_slice::<Value>(&out.stdout) else { return false };
        let runs = runs.as_array().cloned().unwrap_or_default();
        runs.len() >= at_least && runs.iter().all(|r| r["state"] == "written")
    };
    let mut said: Vec<(String, Vec<u8>)> = Vec::new();

    // A token first.
    let nats = bulkflow_testkit::nats::NatsServer::start_with(&["--auth", NATS_TOKEN]);
    private(&nats_file, &serde_json::json!({"url": nats.url(), "token": NATS_TOKEN}).to_string());
    said.push(("runs start (token)".into(), output(&["runs", "start", "salesforce_bulkapi_query_account"])));
    let log = d.join("run-token.log");
    engine_run::run_until(bulkflow(&["run"]), &log, Duration::from_secs(120), |_| all_written(1), |_| {});
    said.push(("the engine's log (token)".into(), std::fs::read(&log).unwrap()));
    drop(nats);

    // Then an nkey, with the TUI watching.
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let nats = bulkflow_testkit::nats::NatsServer::start_with_config(&format!(
        "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}",
        user.public_key()
    ));
    private(&nats_file, &serde_json::json!({"url": nats.url(), "nkey_seed": seed}).to_string());
    said.push(("runs start (nkey)".into(), output(&["runs", "start", "salesforce_bulkapi_query_account"])));
    let log = d.join("run-nkey.log");
    let mut engine =
        bulkflow(&["run"]).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let tui = Tmux::start(&format!("{} tui --dir {}", env!("CARGO_BIN_EXE_bulkflow"), d.display()), 160, 40);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !all_written(2) {
        assert!(
            Instant::now() < deadline && engine.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let table = tui.wait_for("two runs written", Duration::from_secs(30), |p| {
        p.contains(" connected") && p.lines().filter(|l| l.contains(" written")).count() >= 2
    });
    tui.send_keys(&["Enter"]);
    let detail = tui.wait_for("a run's detail", Duration::from_secs(10), |p| p.contains("Run detail"));
    assert!(detail.contains("window"), "{detail}");
    said.push(("the TUI's runs table".into(), table.into_bytes()));
    said.push(("the TUI's run detail".into(), detail.into_bytes()));
    said.push(("runs list --json (nkey)".into(), output(&["runs", "list", "--json"])));
    Command::new("kill").args(["-TERM", &engine.id().to_string()]).status().unwrap();
    assert!(engine.wait().unwrap().success());
    said.push(("the engine's log (nkey)".into(), std::fs::read(&log).unwrap()));

    // The export went through the bus and into BigQuery.
    let data = http_get(&format!(
        "http://{bigquery}/bigquery/v2/projects/{PROJECT}/datasets/salesforce/tables/account/data?maxResults=1"
    ));
    let data: Value = serde_json::from_str(&data).unwrap();
    let rows: u64 = data["totalRows"].as_str().and_then(|n| n.parse().ok()).unwrap_or_default();
    assert!(rows >= 300, "BigQuery holds the export: {data}");
    for (what, bytes) in &said {
        if what.starts_with("the engine's log") {
            let text = String::from_utf8_lossy(bytes);
            assert!(text.contains(" TRACE ") && text.contains("nats"), "{what}: trace logging is on, the bus is NATS");
        }
    }

    let mut places = said;
    for file in every_file(&d.join("state")).into_iter().chain(every_file(&d.join("lake"))) {
        places.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    for (place, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for needle in [NATS_TOKEN, seed.as_str(), GCP_KEY, TOKEN_MARKER] {
            assert!(!text.contains(needle), "`{needle}` found in {place}");
        }
    }
}
