//! `bulkflow tui` in a real terminal: tmux runs it against `bulkflow run` exporting from
//! `bulkflow sim serve` (the seed's Account query, its job listener, and its writer to a local
//! lake), and the captured pane shows the run moving through its states to `written`; then the
//! engine stops (the pane says "disconnected") and starts again (the pane reconnects). The same
//! export shows in the engine's `/metrics`.
//!
//! tmux is required: missing, the test fails with how to install it (`scripts/test.sh` does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "support/sim_process.rs"]
mod sim_process;
#[path = "support/tmux.rs"]
mod tmux;

use sim_process::SimProcess;
use tmux::Tmux;

const FLOWS: [&str; 3] = [
    "workflows/seed/salesforce_bulkapi_query_account.yaml",
    "workflows/seed/salesforce_bulkapi_job_listener.yaml",
    "workflows/seed/salesforce_bulkapi_writer_account.yaml",
];
/// In the order a run goes through them.
const STATES: [&str; 6] = ["scheduled", "job_created", "completed_event", "results_fetched", "published", "written"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn engine(dir: &Path, metrics_port: u16) -> Killed {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("run.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .current_dir(dir)
        .args(["run", "--job-poll-after", "3s", "--workflows", "wf", "--state", "state", "--credentials-root"])
        .arg(dir.join("creds"))
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .arg("--resources")
        .arg(repo().join("resources"))
        .env("RUST_LOG", "info")
        .env("GCS_BUCKET_PATH", dir.join("lake"))
        .env("NATS_URL", "")
        .env_remove("BULKFLOW_CONFIG")
        .env_remove("BULKFLOW_CONTROL_TOKEN")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Killed(child)
}

#[test]
fn the_tui_in_tmux_shows_an_export_moving_through_its_states_and_survives_an_engine_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("wf")).unwrap();
    for flow in FLOWS {
        let mut yaml = std::fs::read_to_string(repo().join(flow)).unwrap();
        // The lake only: the writer's BigQuery branch is the bigquery tests' business.
        if let Some(at) = yaml.find("    - gcp_bigquery_storage_write:") {
            yaml.truncate(at);
        }
        std::fs::write(d.join("wf").join(Path::new(flow).file_name().unwrap()), yaml).unwrap();
    }

    let state = d.join("sim").display().to_string();
    let sim = SimProcess::start(d, &["--records", "Account=20000", "--job-latency", "1500ms", "--state", &state]);
    assert!(sim.url.starts_with("http://127.0.0.1:"), "{}", sim.url);

    let out = Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .current_dir(d)
        .args(["runs", "start", "salesforce_bulkapi_query_account", "--workflows", "wf", "--state", "state"])
        .arg("--resources")
        .arg(repo().join("resources"))
        .arg("--credentials-root")
        .arg(d.join("creds"))
        .env_remove("BULKFLOW_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string();
    // The table's RUN column: the scheduled time, as MM-DD HH:MM:SS.
    let at: chrono::DateTime<chrono::Utc> = id.split_once('@').unwrap().1.parse().unwrap();
    let row_key = at.format("%m-%d %H:%M:%S").to_string();

    let tmux = Tmux::start(&format!("{} tui --dir {}", env!("CARGO_BIN_EXE_bulkflow"), d.display()), 100, 30);
    // No engine yet: the UI says so and keeps trying.
    tmux.wait_for("disconnected", Duration::from_secs(10), |p| p.contains("disconnected"));

    let metrics_port = bulkflow_testkit::free_port();
    let mut running = engine(d, metrics_port);
    let mut seen: Vec<&str> = Vec::new();
    let pane = tmux.wait_for("the run written", Duration::from_secs(120), |pane| {
        let Some(row) = pane.lines().find(|l| l.contains(&row_key)) else { return false };
        if let Some(state) = STATES.iter().find(|s| row.split_whitespace().any(|w| w == **s))
            && seen.last() != Some(state)
        {
            seen.push(state);
        }
        seen.last() == Some(&"written")
    });
    assert!(pane.contains(" connected"), "{pane}");
    let order: Vec<usize> = seen.iter().map(|s| STATES.iter().position(|x| x == s).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "states out of order: {seen:?}");
    // Two at least: how many in-between states a 50 ms capture catches depends on the machine.
    assert!(seen.len() >= 2, "the pane showed too few of the run's states: {seen:?}\n{pane}");
    std::fs::write(d.join("pane.txt"), &pane).unwrap();
    println!("states seen in the pane: {seen:?}\n{pane}");

    // The same export in /metrics: the ledger's figures and the ones measured as they happened.
    let metrics = get_metrics(metrics_port);
    for expected in [
        "bulkflow_runs{state=\"written\"} 1\n",
        "bulkflow_records_fetched{flow=\"salesforce_bulkapi_query_account\"} 20000\n",
        "bulkflow_page_seconds_count{object=\"Account\"} 1\n",
        "bulkflow_bus_lag_batches{sink=\"salesforce_bulkapi_writer_account\"} 0\n",
        "bulkflow_written_bytes_total{flow=\"salesforce_bulkapi_writer_account\",sink=\"write_to_object_store\"} ",
    ] {
        assert!(metrics.contains(expected), "no `{expected}` in /metrics:\n{metrics}");
    }

    // The engine stops: the UI says so; it starts again: the UI is back, with the same run.
    Command::new("kill").args(["-TERM", &running.0.id().to_string()]).status().unwrap();
    running.0.wait().unwrap();
    tmux.wait_for("disconnected after the engine stopped", Duration::from_secs(15), |p| p.contains("disconnected"));
    let _again = engine(d, bulkflow_testkit::free_port());
    let pane = tmux.wait_for("connected again", Duration::from_secs(30), |p| {
        p.contains(" connected") && p.lines().any(|l| l.contains(&row_key) && l.contains("written"))
    });
    assert!(!pane.contains("disconnected"), "{pane}");

    // Enter on the run: its detail, with the window it covered.
    tmux.send_keys(&["Enter"]);
    let pane = tmux.wait_for("the run's detail", Duration::from_secs(10), |p| p.contains("Run detail"));
    assert!(pane.contains(&id) && pane.contains("window") && pane.contains("batches written"), "{pane}");
}

/// GET /metrics on the engine's metrics port.
fn get_metrics(port: u16) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    })
}
