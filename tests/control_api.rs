//! The control API of a running `bulkflow run`: `bulkflow runs` goes through it while the engine
//! holds the store's lock and prints what it prints from the stopped store; `/metrics`, `/healthz`
//! and `/readyz`; and who may call it (the socket's mode, the token on TCP).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bulkflow_control_proto::client::{Address, connect};
use bulkflow_control_proto::{ListRunsRequest, RunRef};

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

fn stdout(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(ok(dir, args).stdout).unwrap()
}

/// Waits until the engine's log holds `text` `times` times.
fn wait_log(dir: &Path, text: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
        if log.matches(text).count() >= times {
            return;
        }
        assert!(Instant::now() < deadline, "no `{text}` in the engine's log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn_engine(dir: &Path, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    bulkflow(dir, &args).stdout(Stdio::null()).stderr(log).spawn().unwrap()
}

fn stop(mut child: Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
}

fn get(port: u16, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let response = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

#[test]
fn runs_commands_go_through_a_running_engine_and_print_what_they_print_on_a_stopped_store() {
    let dir = daily::project();
    let d = dir.path();
    let out = stdout(d, &["runs", "start", "daily", "--since", "1990-01-01T00:00:00Z"]);
    let bad = out.split_whitespace().next().unwrap().to_string();
    let metrics_port = bulkflow_testkit::free_port();
    let engine = spawn_engine(d, &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
    wait_log(d, "run failed", 1);

    let socket = d.join("state/control.sock");
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

    // The store is locked by the engine: these answers come from the control API.
    let listed = stdout(d, &["runs", "list"]);
    assert!(listed.contains(&bad) && listed.contains("failed"), "{listed}");
    let listed_json = stdout(d, &["runs", "list", "--json"]);
    let shown = stdout(d, &["runs", "show", &bad]);
    assert!(shown.contains("window starts before 2000"), "{shown}");

    let (status, text) = get(metrics_port, "/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("bulkflow_runs{state=\"failed\"} 1"), "{text}");
    assert!(text.contains("bulkflow_run_failures{flow=\"daily\"} 1"), "{text}");
    assert_eq!(get(metrics_port, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(metrics_port, "/readyz"), (200, "ready\n".into()));
    assert_eq!(get(metrics_port, "/nope").0, 404);

    let retried = stdout(d, &["runs", "retry", &bad]);
    assert_eq!(retried, format!("{bad} scheduled (attempt 2)\n"));
    // The running engine fires the retried run at once (and its window fails again), and a run
    // started through it runs now, not on the next start.
    wait_log(d, "run failed", 2);
    let good = stdout(d, &["runs", "start", "daily", "--since", "2020-06-01T00:00:00Z"]);
    assert!(
        good.ends_with(" scheduled; the running engine starts it now (after the flow's run in flight, if any)\n"),
        "{good}"
    );
    wait_log(d, "run completed", 1);
    let shown_after = stdout(d, &["runs", "show", &bad, "--json"]);
    let listed_after = stdout(d, &["runs", "list"]);
    let missing = bulkflow(d, &["runs", "show", "daily@2001-01-01T00:00:00Z"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("no run daily@2001-01-01T00:00:00Z in state"));
    let unknown = bulkflow(d, &["runs", "start", "nope"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&unknown.stderr), "no flow `nope` in wf\n");
    stop(engine);
    assert!(!socket.exists(), "the engine removes its socket on stop");

    // The same commands on the stopped store, byte for byte (nothing changed since).
    assert_eq!(stdout(d, &["runs", "show", &bad, "--json"]), shown_after);
    assert_eq!(stdout(d, &["runs", "list"]), listed_after);
    let shown: serde_json::Value = serde_json::from_str(&shown_after).unwrap();
    assert_eq!((shown["state"].as_str(), shown["attempts"].as_u64()), (Some("failed"), Some(2)));
    let before: Vec<serde_json::Value> = serde_json::from_str(&listed_json).unwrap();
    assert_eq!((before.len(), before[0]["attempts"].as_u64()), (1, Some(1)));
    assert!(listed_after.contains("completed"), "{listed_after}");
}

#[test]
fn a_non_loopback_bind_without_a_token_is_refused_and_so_is_a_request_without_the_token() {
    let dir = daily::project();
    let d = dir.path();
    let port = bulkflow_testkit::free_port();
    let open = format!("0.0.0.0:{port}");
    let out = bulkflow(d, &["run", "--control-listen", &open]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address and no token is set"), "{stderr}");
    // The metrics endpoints carry no token: loopback only, whatever the control API's token.
    std::fs::write(d.join("token"), "s3cret-token\n").unwrap();
    let metrics = format!("0.0.0.0:{}", bulkflow_testkit::free_port());
    let out = bulkflow(d, &["run", "--metrics-listen", &metrics, "--control-token-file", "token"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen on a loopback address only"), "{stderr}");

    let engine = spawn_engine(d, &["--control-listen", &open, "--control-token-file", "token"]);
    wait_log(d, "control API listening on TCP", 1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let address = Address::Tcp(format!("127.0.0.1:{port}"));
        let mut anonymous = connect(&address, None).await.unwrap();
        let refused = anonymous.list_runs(ListRunsRequest::default()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let mut wrong = connect(&address, Some("guess")).await.unwrap();
        assert_eq!(wrong.get_run(RunRef { id: "a@b".into() }).await.unwrap_err().code(), tonic::Code::Unauthenticated);
        let mut client = connect(&address, Some("s3cret-token")).await.unwrap();
        let runs = client.list_runs(ListRunsRequest::default()).await.unwrap().into_inner().runs;
        // The CLI reads the same token file and goes through the socket, to the same runs.
        let listed = stdout(d, &["runs", "list", "--json", "--control-token-file", "token"]);
        let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed.len(), runs.len());
        let refused = bulkflow(d, &["runs", "list"]).output().unwrap();
        assert!(!refused.status.success(), "without the token the socket refuses too");
    });
    let log = std::fs::read_to_string(d.join("run.log")).unwrap();
    stop(engine);
    assert!(!log.contains("s3cret-token"), "the token is never logged");
}

/// Limits on what callers can make the engine hold: at most 32 streams (`WatchRuns`, `TailLogs`)
/// at once, the next one refused with `RESOURCE_EXHAUSTED` until a watcher leaves; a request far
/// larger than any of ours is refused before it is decoded; the engine serves on afterwards.
#[test]
fn streams_and_request_sizes_are_capped() {
    use bulkflow_control_proto::{StartRunRequest, TailLogsRequest, WatchRunsRequest};
    const MAX_WATCHERS: usize = 32;
    let dir = daily::project();
    let d = dir.path();
    let engine = spawn_engine(d, &[]);
    wait_log(d, "control API listening", 1);
    let address = Address::Unix(d.join("state/control.sock"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // Each stream held open on a connection of its own, as many TUIs would.
        let (mut watching, mut tailing) = (Vec::new(), Vec::new());
        for i in 0..MAX_WATCHERS {
            let mut client = connect(&address, None).await.unwrap();
            if i % 2 == 0 {
                let stream = client.watch_runs(WatchRunsRequest {}).await.unwrap_or_else(|e| panic!("stream {i}: {e}"));
                watching.push((client, stream));
            } else {
                let stream = client.tail_logs(TailLogsRequest {}).await.unwrap_or_else(|e| panic!("stream {i}: {e}"));
                tailing.push((client, stream));
            }
        }
        let mut extra = connect(&address, None).await.unwrap();
        let refused = extra.watch_runs(WatchRunsRequest {}).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
        assert!(refused.message().contains("32 streams"), "{refused}");
        assert_eq!(extra.tail_logs(TailLogsRequest {}).await.unwrap_err().code(), tonic::Code::ResourceExhausted);
        // Plain calls are not streams: they go on.
        extra.list_runs(ListRunsRequest::default()).await.unwrap();

        // A watcher leaves (its connection closes): its place is free again soon.
        drop(watching.remove(0));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match extra.watch_runs(WatchRunsRequest {}).await {
                Ok(_) => break,
                Err(e) if e.code() == tonic::Code::ResourceExhausted && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("a freed place was not given back: {e}"),
            }
        }

        let huge = StartRunRequest { flow: "x".repeat(1 << 20), since: None };
        let refused = extra.start_run(huge).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused}");
        extra.list_runs(ListRunsRequest::default()).await.unwrap();
        assert_eq!(watching.len() + tailing.len(), MAX_WATCHERS - 1);
    });
    stop(engine);
}
