//! `bulkflow runs start|retry|cancel` on a stopped engine's store, and what the engine then does.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/bulkflow_cmd.rs"]
mod bulkflow_cmd;
#[path = "support/daily.rs"]
mod daily;

use bulkflow_cmd::bulkflow;

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = bulkflow(dir, args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn show(dir: &Path, id: &str) -> Value {
    serde_json::from_slice(&ok(dir, &["runs", "show", id, "--json"]).stdout).unwrap()
}

/// The id printed by `runs start`.
fn start(dir: &Path, since: &str) -> String {
    let out = ok(dir, &["runs", "start", "daily", "--since", since]);
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Runs the engine until this many runs completed or failed (read from its log), then stops it
/// with SIGTERM.
fn run_engine_until(dir: &Path, runs_completed_or_failed: usize) {
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    let mut child = bulkflow(dir, &["run"]).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
        let ended = text.matches("run completed").count() + text.matches("run failed").count();
        if ended >= runs_completed_or_failed {
            break;
        }
        assert!(Instant::now() < deadline, "the engine did not finish the runs:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn backfills_run_on_the_next_start_and_a_failed_one_can_be_retried_or_cancelled() {
    let dir = daily::project();
    let d = dir.path();

    let bad = start(d, "1990-01-01T00:00:00Z");
    // Started within the same second: still two runs (the second takes the next free second).
    let good = start(d, "2020-06-01T00:00:00Z");
    assert_ne!(bad, good);
    assert_eq!(show(d, &bad)["state"], "scheduled");
    let input = &show(d, &good)["checkpoints"][0]["input"];
    assert_eq!(input["data"]["system_info"]["last_run_time"], 1_590_969_600);

    run_engine_until(d, 2);
    let (bad_run, good_run) = (show(d, &bad), show(d, &good));
    assert_eq!(bad_run["state"], "failed", "{bad_run:#}");
    assert!(bad_run["last_error"].as_str().unwrap().contains("before 2000"), "{bad_run:#}");
    assert_eq!(good_run["state"], "completed", "{good_run:#}");

    // Retry moves the failed run back to where it failed, as a new attempt; cancel ends it.
    let out = ok(d, &["runs", "retry", &bad]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("scheduled (attempt 2)"));
    ok(d, &["runs", "cancel", &bad]);
    assert_eq!(show(d, &bad)["state"], "cancelled");
    // A finished run cannot be retried or cancelled: a clear error, not a panic.
    let out = bulkflow(d, &["runs", "cancel", &good]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot cancel from completed"), "{out:?}");
    // An unknown flow is named.
    let out = bulkflow(d, &["runs", "start", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no flow `nope`"));
}
