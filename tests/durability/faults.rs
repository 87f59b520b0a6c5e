//! The fault matrix: faults that are not crashes, each injected during a real export (the engine,
//! the simulator, the bus, PostgreSQL and the lake all in their own processes, as the kill matrix
//! sets them up), then the kill matrix's checks: every `Id` once in the lake and the warehouses, one
//! Bulk job per run, no page served more than twice, the watermark right. Where a fault is final
//! (a job that failed or was aborted in Salesforce), the run must end `failed` with Salesforce's
//! reason in `last_error`, and the next run must cover its window.
//!
//! The simulator injects each fault through `POST /__sim/faults`; every test also asserts that its
//! fault fired (`faults_injected`), so a fault armed too late cannot pass for one survived.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BusKind, Postgres, QUERY_FLOW, Setup};

/// Waits until `ready` holds, polling; panics naming `what` after `within`.
fn wait_for(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Setup {
    /// `bulkflow tui` on this setup's state directory, in a tmux pane of its own, 200 × 60.
    fn tui(&self) -> super::tmux::Tmux {
        let state = self.path().join("state");
        super::tmux::Tmux::start(&format!("{} tui --dir {}", env!("CARGO_BIN_EXE_bulkflow"), state.display()), 200, 60)
    }

    fn faults_injected(&self, kind: &str) -> u64 {
        self.sim_get("/__sim/stats")["faults_injected"][kind].as_u64().unwrap_or(0)
    }

    fn requests(&self, endpoint: &str) -> u64 {
        self.sim_get("/__sim/stats")["requests"][endpoint].as_u64().unwrap_or(0)
    }

    /// Rows in PostgreSQL's table, or 0 when it cannot be asked (no table yet, no server).
    fn warehouse_rows(&self) -> i64 {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let Ok((client, connection)) = tokio_postgres::connect(&self.warehouse, tokio_postgres::NoTls).await else {
                return 0;
            };
            tokio::spawn(connection);
            let row = client.query_one(r#"SELECT count(*) FROM salesforce.account"#, &[]).await;
            row.map_or(0, |r| r.get(0))
        })
    }

    /// Rows in the lake's finished Parquet files so far.
    fn lake_rows(&self) -> usize {
        super::lake_support::lake_contents(&self.path().join("lake")).rows
    }

    /// The query flow's run in `state`, once there is one (through the running engine).
    fn wait_for_run(&self, state: &str) -> Value {
        let mut found = Value::Null;
        wait_for(&format!("a run {state}"), Duration::from_secs(60), || {
            found = self.query_runs().into_iter().find(|r| r["state"] == state).unwrap_or_default();
            !found.is_null()
        });
        found
    }

    /// A job's state in Salesforce, asked through the Bulk API as any client of the org would;
    /// `abort` aborts it first (someone else with access to the org, from another client).
    fn job_state(&self, job: &str, abort: bool) -> String {
        use bulkflow_engine::credentials::CredentialsRoot;
        use bulkflow_engine::salesforce::{Clients, bulk};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let clients = Clients::new(CredentialsRoot::new(Some(self.path().join("creds"))), "63.0", Default::default());
        let client = clients.get(std::path::Path::new("/etc/sfdc/credentials.json")).unwrap();
        let info =
            if abort { rt.block_on(bulk::abort_job(&client, job)) } else { rt.block_on(bulk::get_job(&client, job)) };
        info.unwrap().state
    }

    /// `bulkflow runs start` for the query flow, through the running engine: the run after a
    /// failed one, as an operator (or the next tick) starts it.
    fn start_next_run(&self) {
        let out = self.bulkflow(&["runs", "start", QUERY_FLOW]).output().unwrap();
        assert!(out.status.success(), "runs start: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn setup(name: &str, job_latency: &str) -> (Postgres, Setup) {
    let pg = Postgres::start();
    let setup = Setup::with_job_latency(&pg, &format!("fault_{name}"), BusKind::Embedded, job_latency);
    (pg, setup)
}

/// Runs the export with `faults` armed before the engine starts, then checks it.
fn survives(name: &str, faults: Value, extra: &[&str]) -> (Postgres, Setup) {
    let (pg, setup) = setup(name, "300ms");
    setup.set_faults(faults);
    setup.settle("settle.log", extra);
    setup.check(name);
    (pg, setup)
}

/// Fault 1: A burst of 503s on job creation, on the job's status and on results pages: each call is
/// asked again with backoff, and the export goes on as if nothing happened.
#[test]
fn bursts_of_503_on_job_creation_status_and_results() {
    let burst = json!({"error_5xx_by_endpoint": {"job_create": 3, "job_get": 3, "job_results": 3}});
    let (_pg, setup) = survives("503_bursts", burst, &[]);
    assert_eq!(setup.faults_injected("error_5xx"), 9, "every 503 of the bursts was answered");
}

/// Fault 1: A burst longer than one call's retries (5 attempts) on the results: the page fetch gives up,
/// the step is retried from its checkpoint, and nothing is lost or doubled.
#[test]
fn a_503_burst_longer_than_a_calls_retries() {
    let burst = json!({"error_5xx_by_endpoint": {"job_results": 7}});
    let (_pg, setup) = survives("503_long_burst", burst, &[]);
    assert_eq!(setup.faults_injected("error_5xx"), 7);
}

/// Fault 3: Every access token revoked while the results are read: the client logs in again on the
/// first `INVALID_SESSION_ID` and goes on.
#[test]
fn the_access_token_revoked_mid_export() {
    let (_pg, setup) = setup("revoked", "300ms");
    let slow = json!({"latency_ms": 300, "endpoints": ["job_results"]});
    setup.set_faults(slow.clone());
    setup.settle_during("settle.log", &[], || {
        wait_for("the first results page", Duration::from_secs(60), || setup.requests("job_results") >= 1);
        setup.set_faults(json!({"revoke_tokens": true, "latency_ms": 300, "endpoints": ["job_results"]}));
    });
    setup.check("a revoked token");
    assert!(setup.requests("oauth_token") >= 2, "the engine logged in again: {}", setup.sim_get("/__sim/stats"));
}

/// Fault 4: A results body cut mid-page (the connection dropped after 4 KiB): the page is fetched again
/// from its locator.
#[test]
fn a_results_body_cut_mid_page() {
    let (_pg, setup) = survives("cut_page", json!({"cut_results": 1, "cut_after_bytes": 4096}), &[]);
    assert_eq!(setup.faults_injected("cut_results"), 1);
}

/// Fault 4: A results page sent a byte a second: the page's deadline (`salesforce_page_timeout`, 30 min
/// by default, 5 s here) ends it, and the page is fetched again.
#[test]
fn a_results_page_sent_a_byte_a_second() {
    let slow = json!({"slow_pages": 1, "slow_byte_interval_ms": 1000});
    let (_pg, setup) = survives("slow_page", slow, &["--salesforce-page-timeout", "5s"]);
    assert_eq!(setup.faults_injected("slow_pages"), 1);
}

/// Fault 5: The Pub/Sub stream dropped with the completion event in flight: the subscriber resumes
/// from the last replay id it had and gets the event. The completion poller is kept out of it
/// (a minute of quiet before it would stand in), so this shows the replay.
#[test]
fn the_pubsub_stream_dropped_mid_event() {
    let (_pg, setup) = survives("pubsub_drop", json!({"pubsub_drop_on_event": 1}), &["--job-poll-after", "60s"]);
    assert_eq!(setup.faults_injected("pubsub_drop_on_event"), 1);
}

/// Fault 5: The completion event published while the engine is down (SIGKILLed with its job running):
/// the engine started again finds the job's completion, by replay or by polling.
#[test]
fn the_completion_event_published_while_the_engine_is_down() {
    let (_pg, setup) = setup("event_while_down", "4s");
    let log = setup.path().join("first.log");
    let mut engine = setup
        .bulkflow(&["run", "--job-poll-after", "2s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let run = setup.wait_for_run("job_created");
    engine.kill().unwrap(); // SIGKILL
    engine.wait().unwrap();
    let job = run["job_id"].as_str().expect("the run names its job").to_owned();
    assert_ne!(setup.job_state(&job, false), "JobComplete", "the job completed before the engine died");
    // The job completes (4 s after it was made) with no engine to hear its event.
    wait_for("the job's completion", Duration::from_secs(30), || setup.job_state(&job, false) == "JobComplete");
    setup.settle("settle.log", &[]);
    setup.check("completion while down");
    assert_eq!(setup.query_runs().len(), 1, "the run that was down is the one written: {run:#}");
}

/// Fault 6: A job that ends `Failed` in Salesforce: its run fails with Salesforce's message, and the
/// next run covers its window.
#[test]
fn a_job_that_fails_in_salesforce() {
    let (_pg, setup) = setup("job_failed", "300ms");
    let message = "InternalServerError: the query could not be completed";
    setup.set_faults(json!({"fail_jobs": 1, "failed_job_message": message}));
    setup.settle_during("settle.log", &[], || {
        let failed = setup.wait_for_run("failed");
        let error = failed["last_error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "last_error says Salesforce's reason: {failed:#}");
        setup.start_next_run();
    });
    setup.check_runs("a failed job", 1);
}

/// Fault 6: A job aborted in Salesforce by someone else while it runs: its run fails saying so, and the
/// next run covers its window.
#[test]
fn a_job_aborted_by_someone_else() {
    let (_pg, setup) = setup("job_aborted", "10s");
    setup.settle_during("settle.log", &[], || {
        let run = setup.wait_for_run("job_created");
        let job = run["job_id"].as_str().expect("the run names its job").to_owned();
        assert_eq!(setup.job_state(&job, true), "Aborted");
        let failed = setup.wait_for_run("failed");
        let error = failed["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("aborted") && error.contains(&job), "last_error says the job was aborted: {failed:#}");
        setup.start_next_run();
    });
    setup.check_runs("an aborted job", 1);
}

/// Fault 2: `REQUEST_LIMIT_EXCEEDED` on every call for a while, from the middle of the results on: the
/// run keeps its job and waits, saying why; once the limit lifts, the completion poller finds the
/// job complete and the results are read on from the checkpoint.
#[test]
fn the_request_limit_exceeded_mid_export() {
    let (_pg, setup) = setup("request_limit_mid", "300ms");
    setup.set_faults(json!({"latency_ms": 300, "endpoints": ["job_results"]}));
    setup.settle_during("settle.log", &[], || {
        wait_for("the first results page", Duration::from_secs(60), || setup.requests("job_results") >= 1);
        setup.set_faults(json!({"request_limit_ms": 15_000}));
        // Held up, the run says why (`runs show`, the TUI), with the engine running.
        let id = setup.query_runs()[0]["id"].as_str().unwrap().to_owned();
        wait_for("the run saying it waits on the limit", Duration::from_secs(14), || {
            let shown = setup.json(&["runs", "show", &id, "--json"]);
            shown["waiting"].as_str().is_some_and(|why| why.contains("API limit is exhausted"))
        });
    });
    setup.check("a request limit mid-export");
    assert!(setup.faults_injected("request_limit") >= 1);
}

/// Fault 2: `REQUEST_LIMIT_EXCEEDED` on every call for a while, from before the job is created: the
/// run fails at once saying so (no job, nothing written), and the next run, once the limit is
/// lifted, covers its window.
#[test]
fn the_request_limit_exceeded_at_job_creation() {
    let (_pg, setup) = setup("request_limit_create", "300ms");
    let lifted = Instant::now() + Duration::from_secs(10);
    setup.set_faults(json!({"request_limit_ms": 10_000}));
    setup.settle_during("settle.log", &[], || {
        let failed = setup.wait_for_run("failed");
        let error = failed["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("API limit") && error.contains("REQUEST_LIMIT") || error.contains("Limit exceeded"),
            "last_error says the limit: {failed:#}"
        );
        std::thread::sleep(lifted.saturating_duration_since(Instant::now()));
        setup.start_next_run();
    });
    setup.check_runs("a request limit at job creation", 1);
    assert!(setup.faults_injected("request_limit") >= 1);
}

/// Fault 7: nats-server SIGKILLed and started again on its store seconds later, with batches
/// being published and consumed: the publisher and the writers reconnect, what the server had
/// not stored is published again (same message ids), what a writer held unacknowledged comes back
/// after its ack wait. Three rounds, since what is in flight at the kill differs each time.
#[test]
fn nats_server_killed_and_restarted_mid_export() {
    for round in 0..3 {
        let pg = Postgres::start();
        let setup = Setup::with_job_latency(&pg, &format!("fault_nats_{round}"), BusKind::Nats, "300ms");
        setup.set_faults(json!({"latency_ms": 400, "endpoints": ["job_results"]}));
        setup.settle_during(&format!("settle{round}.log"), &[], || {
            wait_for("the first batch in the lake", Duration::from_secs(60), || setup.lake_rows() > 0);
            let nats = setup.nats.as_ref().expect("the nats bus");
            nats.borrow_mut().kill();
            assert!(setup.lake_rows() < super::records(), "round {round}: killed mid-export");
            std::thread::sleep(Duration::from_secs(2));
            nats.borrow_mut().start_again();
        });
        setup.check(&format!("nats-server killed, round {round}"));
    }
}

/// Fault 8: PostgreSQL stopped for a minute with the writes under way: the PostgreSQL writer
/// reconnects with backoff, the batches it could not write come back from the bus, the other
/// writers go on meanwhile, and the log says what the writer waits for. (An outage longer than the
/// writer's reconnecting, 30 s per attempt, also puts it in the run's `waiting`: the subscriber's
/// tests show that.)
#[test]
fn postgresql_stopped_for_a_minute_mid_write() {
    let (pg, setup) = setup("pg_stopped", "300ms");
    setup.set_faults(json!({"latency_ms": 400, "endpoints": ["job_results"]}));
    setup.settle_during("settle.log", &[], || {
        let mut rows = 0;
        wait_for("the first rows in PostgreSQL", Duration::from_secs(60), || {
            rows = setup.warehouse_rows();
            rows > 0
        });
        pg.stop();
        let back = Instant::now() + Duration::from_secs(60);
        assert!(rows < super::records() as i64, "stopped mid-write: {rows} rows in");
        // Meanwhile the log says what the writer waits for.
        wait_for("the writer saying it reconnects", Duration::from_secs(55), || {
            let log = std::fs::read_to_string(setup.path().join("settle.log")).unwrap_or_default();
            log.contains("PostgreSQL unavailable; reconnecting")
        });
        std::thread::sleep(back.saturating_duration_since(Instant::now()));
        assert!(setup.lake_rows() == super::records(), "the lake writer went on while PostgreSQL was down");
        pg.start_again();
    });
    setup.check("PostgreSQL stopped for a minute");
}

/// Waits for the log `log` of the running engine to contain `text`.
fn wait_for_log(setup: &Setup, log: &str, text: &str, within: Duration) {
    let read = || std::fs::read_to_string(setup.path().join(log)).unwrap_or_default();
    let deadline = Instant::now() + within;
    while !read().contains(text) {
        assert!(Instant::now() < deadline, "the log never said {text:?} in {within:?}:\n{}", read());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fault 9: The lake's file system read-only for the export's first 20 s (the error point
/// `lake.write` answers EROFS while its flag file exists; `chmod` does not stop root): the lake
/// writer's attempts fail and its messages are asked again with the flow's backoff, nothing reaches
/// the lake meanwhile, and once it takes writes again every batch lands there once.
#[test]
fn the_lake_read_only_for_a_while() {
    let (_pg, mut setup) = setup("lake_read_only", "300ms");
    let flag = setup.path().join("lake-read-only");
    setup.fail_while = Some(format!("lake.write:{}", flag.display()));
    std::fs::write(&flag, "").unwrap();
    let back = Instant::now() + Duration::from_secs(20);
    setup.settle_during("settle.log", &[], || {
        wait_for_log(&setup, "settle.log", "Read-only file system (os error 30)", Duration::from_secs(60));
        std::thread::sleep(back.saturating_duration_since(Instant::now()));
        assert_eq!(setup.lake_rows(), 0, "nothing reached the lake while it was read-only");
        std::fs::remove_file(&flag).unwrap();
    });
    setup.check("the lake read-only for a while");
}

/// Fault 10: The state directory's disk full (the error point `store.commit` answers ENOSPC while
/// its flag file exists) for 20 s while the run's job runs: the engine says so (an error in the
/// log, `/readyz` 503 naming it) and takes no new work (the job's completion event waits), and
/// nothing in the store moves; once space returns, the run goes on and every check holds.
#[test]
fn the_state_disk_full_for_a_while() {
    // Jobs take 3 s: the disk fills while the run's job runs in Salesforce.
    let (_pg, mut setup) = setup("state_disk_full", "3s");
    let flag = setup.path().join("state-disk-full");
    setup.fail_while = Some(format!("store.commit:{}", flag.display()));
    let metrics = format!("127.0.0.1:{}", bulkflow_testkit::free_port());
    setup.settle_during("settle.log", &["--metrics-listen", &metrics], || {
        setup.wait_for_run("job_created");
        std::fs::write(&flag, "").unwrap();
        wait_for_log(&setup, "settle.log", "the state store cannot write", Duration::from_secs(60));
        let log = std::fs::read_to_string(setup.path().join("settle.log")).unwrap_or_default();
        assert!(log.contains("No space left on device (os error 28)"), "the error names the cause:\n{log}");
        let (status, body) = http_get(&metrics, "/readyz");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("the state store cannot write"), "{body}");
        let tui = setup.tui();
        tui.wait_for("the store's error in the title", Duration::from_secs(15), |p| {
            let title = p.lines().next().unwrap_or_default();
            title.contains("the state store cannot write") && title.contains("No space left on device")
        });
        let runs = setup.query_runs();
        std::thread::sleep(Duration::from_secs(20));
        assert_eq!(setup.query_runs(), runs, "the ledger did not move while the disk was full");
        assert!(runs.iter().all(|r| r["state"] == "job_created"), "the fault came too late: {runs:?}");
        assert_eq!(setup.lake_rows(), 0, "no new work was taken: {runs:?}");
        std::fs::remove_file(&flag).unwrap();
        wait_for_log(&setup, "settle.log", "the state store writes again", Duration::from_secs(30));
        wait_for("/readyz ready once the store writes", Duration::from_secs(30), || {
            http_get(&metrics, "/readyz").0 == 200
        });
        tui.wait_for("the title without the store's error", Duration::from_secs(15), |p| !p.contains("cannot write"));
        tui.send_keys(&["q"]);
    });
    setup.check("the state disk full for a while");
}

/// `GET path` on the engine's metrics listener: the status code (0 while nothing listens) and the
/// body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        match reqwest::get(format!("http://{addr}{path}")).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    })
}

/// Fault 11: nats-server and PostgreSQL both down when the engine starts (a start order gone
/// wrong): the engine waits 30 s for its subscriptions, then starts anyway; its writers keep
/// trying to subscribe with backoff, the log and `/readyz` (503, naming each waiting flow and why)
/// say so, and once both are up the export goes on and `/readyz` answers ready.
#[test]
fn the_bus_and_the_warehouse_down_when_the_engine_starts() {
    let pg = Postgres::start();
    let setup = Setup::with_job_latency(&pg, "fault_down_at_start", BusKind::Nats, "300ms");
    let nats = setup.nats.as_ref().expect("the nats bus");
    nats.borrow_mut().kill();
    pg.stop();
    let metrics = format!("127.0.0.1:{}", bulkflow_testkit::free_port());
    setup.settle_during("settle.log", &["--metrics-listen", &metrics], || {
        let (mut status, mut body) = (0, String::new());
        // The engine waits for its sources up to 30 s (READY_WAIT) before it serves /readyz.
        let deadline = Instant::now() + Duration::from_secs(45);
        while !(status == 503 && body.contains("flow `salesforce_bulkapi_writer_account` waits: cannot subscribe to")) {
            let log = || std::fs::read_to_string(setup.path().join("settle.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "/readyz answered {status}: {body}\nthe log:\n{}", log());
            std::thread::sleep(Duration::from_millis(100));
            (status, body) = http_get(&metrics, "/readyz");
        }
        assert!(body.contains("salesforce_bulkapi_writer_account_postgres"), "{body}");
        let log = std::fs::read_to_string(setup.path().join("settle.log")).unwrap_or_default();
        assert!(log.contains("cannot subscribe yet"), "the log says so:\n{log}");
        // The TUI's flows pane too: each waiting writer says what it waits for.
        let tui = setup.tui();
        tui.wait_for("a writer waiting for the bus", Duration::from_secs(15), |p| {
            p.contains("salesforce_bulkapi_writer_account") && p.contains("(waits: cannot subscribe to")
        });
        tui.send_keys(&["q"]);
        std::thread::sleep(Duration::from_secs(3));
        nats.borrow_mut().start_again();
        pg.start_again();
        wait_for("/readyz ready once the bus is up", Duration::from_secs(60), || {
            http_get(&metrics, "/readyz").0 == 200
        });
    });
    setup.check("the bus and the warehouse down at start");
}

/// Fault 7, as users meet it: `NATS_URL=… bulkflow demo --records N --until-idle` with
/// nats-server SIGKILLed once batches reach the lake and started again on its store 2 s later.
/// Every record must land in the lake and the warehouse once. Two rounds, since what is in flight
/// at the kill differs each time (before the settle deadline, about one try in three left a
/// writer flow stuck for good).
#[test]
fn the_demo_on_nats_lives_through_a_nats_server_restart() {
    use bulkflow_testkit::nats::NatsServer;
    const RECORDS: usize = 10_000;
    for round in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("demo");
        let mut nats = NatsServer::start();
        let mut demo = std::process::Command::new(env!("CARGO_BIN_EXE_bulkflow"))
            .arg("demo")
            .arg("--dir")
            .arg(&d)
            .args(["--records", &RECORDS.to_string(), "--until-idle"])
            .env("NATS_URL", nats.url())
            .env_remove("BULKFLOW_CONFIG")
            .env_remove("BULKFLOW_CRASH_AT")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let lake = d.join("lake");
        let has_parquet = || super::lake_support::files(&lake).iter().any(|f| super::lake_support::is_parquet(f));
        wait_for("the first Parquet file", Duration::from_secs(90), has_parquet);
        nats.kill();
        std::thread::sleep(Duration::from_secs(2));
        nats.start_again();
        // A stuck writer would hold the demo until this limit: the ack wait (120 s) plus the export.
        let deadline = Instant::now() + Duration::from_secs(240);
        let status = loop {
            if let Some(status) = demo.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = demo.kill();
                let log = std::fs::read_to_string(d.join("bulkflow.log")).unwrap_or_default();
                panic!(
                    "round {round}: the demo did not finish; its log's end:\n{}",
                    &log[log.len().saturating_sub(8000)..]
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(status.success(), "round {round}: {status}");
        super::check_demo(&d, &format!("nats-server killed mid-demo, round {round}"), RECORDS);
    }
}
