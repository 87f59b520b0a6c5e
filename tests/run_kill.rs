//! `bulkflow run` killed with SIGKILL, twice, on a flow ticking every second: afterwards every tick
//! has exactly one run, each in a legal state, and the watermark is the last successful run.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/bulkflow_cmd.rs"]
mod bulkflow_cmd;

use bulkflow_cmd::bulkflow;

const FLOW: &str = r#"flow:
  name: ticker
  tasks:
    - generate:
        name: trigger
        interval: 1s
    - script:
        name: window
        code: |
          let since = if event.data.system_info.last_run_time != () { event.data.system_info.last_run_time } else { 0 };
          #{ since: since, run: event.meta.run_id }
"#;

fn start(dir: &Path, log: &str) -> Child {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    bulkflow(dir, &["run"]).stdout(Stdio::null()).stderr(log).spawn().unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = bulkflow(dir, args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn runs(dir: &Path) -> Vec<Value> {
    json(dir, &["runs", "list", "--json"]).as_array().unwrap().clone()
}

/// Kill once at least `min_runs` runs exist, so each life of the process does real work.
fn kill_after(dir: &Path, child: &mut Child, min_runs: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(700));
        // The store is locked by the running engine; count runs from its log instead.
        let log = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default()
            + &std::fs::read_to_string(dir.join("run2.log")).unwrap_or_default();
        if log.matches("run completed").count() >= min_runs {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn sigkill_twice_leaves_one_run_per_tick_and_the_right_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("wf")).unwrap();
    std::fs::create_dir_all(dir.join("res")).unwrap();
    std::fs::write(dir.join("wf/ticker.yaml"), FLOW).unwrap();

    let mut first = start(dir, "run.log");
    kill_after(dir, &mut first, 3);
    let after_first = runs(dir);
    assert!(after_first.len() >= 3, "{after_first:#?}");

    let mut second = start(dir, "run2.log");
    kill_after(dir, &mut second, after_first.len() + 2);

    let all = runs(dir);
    assert!(all.len() >= after_first.len() + 2, "the second life added runs: {all:#?}");
    let mut ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "a tick has two runs: {all:#?}");
    let mut completed = Vec::new();
    for r in &all {
        let state = r["state"].as_str().unwrap();
        // A run the kill caught mid-flight is left `scheduled` (it resumes on the next start).
        assert!(matches!(state, "completed" | "scheduled"), "illegal state: {r:#}");
        assert_eq!(r["attempts"], 1, "{r:#}");
        assert!(r["last_error"].is_null(), "{r:#}");
        assert_eq!(r["flow"], "ticker");
        assert!(r["id"].as_str().unwrap().starts_with("ticker@"));
        if state == "completed" {
            completed.push(r["scheduled_at"].as_str().unwrap().to_string());
        }
    }
    // Every run's transitions: scheduled → completed at most once.
    for id in &ids {
        let shown = json(dir, &["runs", "show", id, "--json"]);
        let history = shown["history"].as_array().unwrap();
        assert!(history.len() <= 1, "{shown:#}");
        assert_eq!(shown["checkpoints"][0]["stage"], "scheduled");
    }
    let status = json(dir, &["flows", "status", "--json"]);
    let latest = completed.iter().max().unwrap();
    assert_eq!(status[0]["watermark_at"].as_str().unwrap(), latest, "{status:#}");

    // A third, graceful life resumes anything the kills left behind.
    let mut third = start(dir, "run3.log");
    std::thread::sleep(Duration::from_secs(3));
    Command::new("kill").args(["-INT", &third.id().to_string()]).status().unwrap();
    assert!(third.wait().unwrap().success());
    let all = runs(dir);
    assert!(all.iter().all(|r| r["state"] == "completed"), "{all:#?}");
}
