//! `bulkflow sim serve` in its own process, as a user runs it, serving until dropped. Included
//! with `#[path = "support/sim_process.rs"] mod sim_process;`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct SimProcess {
    child: Child,
    /// `http://HOST:PORT`, from the ready line.
    pub url: String,
}

impl SimProcess {
    /// `bulkflow sim serve ARGS --credentials-out DIR/creds/etc/sfdc/credentials.json`, logging to
    /// `DIR/sim.log`; returns once the ready line (naming the Pub/Sub API too) was printed.
    pub fn start(dir: &Path, args: &[&str]) -> SimProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulkflow"))
            .args(["sim", "serve"])
            .args(args)
            .arg("--credentials-out")
            .arg(dir.join("creds/etc/sfdc/credentials.json"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("sim.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().find_map(|w| w.strip_prefix("url=")).expect(&line).to_string();
        assert!(line.contains(" pubsub=127.0.0.1:"), "the ready line names the Pub/Sub API: {line}");
        SimProcess { child, url }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
