//! A tmux server of the test's own (`-L`), so a test never touches the user's sessions, running
//! one program in a session named `ui`. Included with `#[path = "support/tmux.rs"] mod tmux;`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    bin: PathBuf,
    socket: String,
}

impl Tmux {
    /// Starts `program` (a shell command line) in a `width`×`height` pane; tmux is required:
    /// missing, the test fails with how to install it.
    pub fn start(program: &str, width: u16, height: u16) -> Tmux {
        let bin = bulkflow_testkit::require_binary("tmux", "TMUX_BIN", &[], "apt-get install tmux");
        // A server per pane: tests of one binary run in parallel, each with its own session.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Tmux { bin, socket: format!("bulkflow-test-{}-{n}", std::process::id()) };
        let started = tmux
            .cmd()
            .args(["new-session", "-d", "-s", "ui", "-x", &width.to_string(), "-y", &height.to_string(), program])
            .status()
            .unwrap();
        assert!(started.success(), "tmux could not start `{program}`");
        tmux
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-L", &self.socket]).env("TERM", "xterm-256color");
        cmd
    }

    pub fn capture(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-t", "ui"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `keys` (tmux key names: `Enter`, `Escape`, `j`) into the pane.
    pub fn send_keys(&self, keys: &[&str]) {
        let status = self.cmd().args(["send-keys", "-t", "ui"]).args(keys).status().unwrap();
        assert!(status.success(), "tmux send-keys {keys:?}");
    }

    /// Captures until `done` holds for the pane, or fails with the last capture.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let pane = self.capture();
            if done(&pane) {
                return pane;
            }
            assert!(Instant::now() < deadline, "the pane never showed {what}:\n{pane}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}
