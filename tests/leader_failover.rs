//! Leader failover between two `bulkflow run` processes, each with its own state directory as two
//! nodes would have, on the same flows and the same NATS (`--nats-url`): exactly one runs the
//! `require_leader_election: true` flow; SIGKILL it and the other takes over within the lease TTL;
//! the killed node, started again, stays a follower while the other leads. The ledgers show it:
//! every run of the first node was scheduled before the kill, every run of the second after it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulkflow_testkit::nats::NatsServer;
use chrono::{DateTime, Utc};
use serde_json::Value;

const TTL: Duration = Duration::from_secs(3);

const FLOW: &str = r#"flow:
  name: query
  require_leader_election: true
  tasks:
    - generate:
        name: trigger
        interval: 1s
    - script:
        name: window
        code: |
          #{ run: event.meta.run_id }
"#;

struct Node {
    dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    fn new(root: &Path, name: &str) -> Self {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("wf")).unwrap();
        std::fs::create_dir_all(dir.join("res")).unwrap();
        std::fs::write(dir.join("wf/query.yaml"), FLOW).unwrap();
        Self { log: dir.join("run1.log"), dir, child: None }
    }

    fn command(&self, sub: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkflow"));
        cmd.current_dir(&self.dir)
            .args(sub)
            .args(["--workflows", "wf", "--resources", "res", "--state", "state"])
            .env("RUST_LOG", "info")
            .env_remove("BULKFLOW_CONFIG")
            .env_remove("BULKFLOW_NATS_URL");
        cmd
    }

    fn start(&mut self, nats_url: &str, life: u32) {
        self.log = self.dir.join(format!("run{life}.log"));
        let log = std::fs::File::create(&self.log).unwrap();
        let ttl = format!("{}s", TTL.as_secs());
        let child = self
            .command(&["run"])
            .args(["--nats-url", nats_url, "--leader-lease-ttl", &ttl])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn campaigns(&self) -> bool {
        self.log().contains("campaigning for the leader lease")
    }

    fn leads(&self) -> bool {
        self.log().contains("became the leader")
    }

    fn started(&self) -> usize {
        self.log().matches("run started").count()
    }

    fn sigkill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "bulkflow run exits cleanly on SIGINT: {status}\n{}", self.log());
    }

    /// Each run's scheduled time, from the node's ledger.
    fn runs(&self) -> Vec<DateTime<Utc>> {
        let out = self.command(&["runs", "list", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
        runs.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["flow"], "query", "{r:#}");
                r["scheduled_at"].as_str().unwrap().parse().unwrap()
            })
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `check` holds; returns how long it took, or `None` after `within`.
fn wait_until(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if check() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn one_node_leads_and_the_other_takes_over_within_the_ttl_after_a_sigkill() {
    let server = NatsServer::start();
    let url = server.url();
    let tmp = tempfile::tempdir().unwrap();
    let mut a = Node::new(tmp.path(), "a");
    let mut b = Node::new(tmp.path(), "b");

    a.start(&url, 1);
    assert!(wait_until(Duration::from_secs(20), || a.started() >= 1).is_some(), "a leads:\n{}", a.log());
    b.start(&url, 1);
    assert!(wait_until(Duration::from_secs(20), || b.campaigns()).is_some(), "b is up:\n{}", b.log());
    // Longer than a TTL: b would have taken a lease a was not renewing.
    std::thread::sleep(TTL + TTL / 2);
    assert!(!b.leads() && b.started() == 0, "b must not lead while a does:\n{}", b.log());
    let a_runs = a.started();
    assert!(a_runs >= 3, "a kept running the flow ({a_runs} runs):\n{}", a.log());

    a.sigkill();
    let killed_at = Utc::now();
    let takeover = wait_until(TTL * 3, || b.leads());
    let takeover = takeover.unwrap_or_else(|| panic!("b did not take over within {:?}:\n{}", TTL * 3, b.log()));
    assert!(takeover <= TTL, "took over in {takeover:?}, more than the lease TTL {TTL:?}");
    assert!(wait_until(Duration::from_secs(10), || b.started() >= 2).is_some(), "{}", b.log());

    // The killed node comes back as a follower: b still holds the lease.
    a.start(&url, 2);
    assert!(wait_until(Duration::from_secs(20), || a.campaigns()).is_some(), "a is up again:\n{}", a.log());
    std::thread::sleep(TTL * 2);
    assert!(!a.leads() && a.started() == 0, "a must not lead while b does:\n{}", a.log());
    eprintln!("b took over {takeover:?} after a was killed (lease TTL {TTL:?})");

    // b stops gracefully and releases the lease: a takes it without waiting for it to expire.
    b.stop();
    let released_at = Utc::now();
    let handover = wait_until(TTL * 3, || a.leads());
    let handover = handover.unwrap_or_else(|| panic!("a did not take the released lease:\n{}", a.log()));
    assert!(handover < TTL / 2, "took the released lease in {handover:?}");
    assert!(wait_until(Duration::from_secs(10), || a.started() >= 1).is_some(), "{}", a.log());
    a.stop();
    eprintln!("a took the released lease {handover:?} after b stopped");

    // The ledgers: a's runs before the kill and after b stopped, b's in between, never both.
    let (a_runs, b_runs) = (a.runs(), b.runs());
    let (a_first_life, a_second_life): (Vec<_>, Vec<_>) = a_runs.iter().partition(|at| **at <= killed_at);
    assert_eq!(a_first_life.len() + a_second_life.len(), a_runs.len());
    assert!(!a_first_life.is_empty() && !a_second_life.is_empty() && !b_runs.is_empty(), "{a_runs:?} {b_runs:?}");
    let a_last = a_first_life.iter().max().unwrap();
    assert!(a_second_life.iter().all(|at| *at >= released_at - chrono::Duration::seconds(1)), "{a_runs:?}");
    assert!(b_runs.iter().all(|at| at > a_last && *at <= released_at), "b's runs {b_runs:?} overlap a's {a_runs:?}");
}
