//! A real S3-compatible server for tests: `moto_server` (PyPI `moto[server]`) on a free loopback
//! port, stopped when dropped. Tests talk S3 to it exactly as they would to AWS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, require_binary};

/// How long moto may take to start (it imports a lot of Python on a cold cache).
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Moto {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
    tls: bool,
}

impl Moto {
    /// Starts moto and waits until it answers HTTP. Panics (failing the test) when moto is not
    /// installed or does not come up, with its log.
    pub fn start() -> Self {
        Self::spawn(&[])
    }

    /// Starts moto serving HTTPS with `cert` and `key` (PEM), ready once it accepts
    /// connections. Its buckets are made over HTTPS by the test ([`Moto::create_bucket`] speaks
    /// plain HTTP only).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Self {
        let (cert, key) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
        Self::spawn(&["-c", &cert, "-k", &key])
    }

    fn spawn(extra: &[&str]) -> Self {
        let tls = !extra.is_empty();
        let home = std::env::var("HOME").unwrap_or_default();
        let user_bin = format!("{home}/.local/bin");
        let bin = require_binary("moto_server", "BULKFLOW_MOTO_SERVER", &[&user_bin], "pip install 'moto[server]'");
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("a temp file for moto's log");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("moto log"))
            .stderr(log.reopen().expect("moto log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut moto = Self { child, port, log, tls };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = if tls {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                moto.request("GET", "/").is_ok_and(|status| status == 200)
            };
            if ready {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited ({status}) before it was ready:\n{}", moto.log_text());
            }
            if Instant::now() > deadline {
                panic!("moto_server did not answer on port {port} within {START_TIMEOUT:?}:\n{}", moto.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS): the `endpoint` an S3 client needs.
    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls { "https" } else { "http" }, self.port)
    }

    /// Creates a bucket (moto accepts unsigned requests, so no S3 client is needed here).
    pub fn create_bucket(&self, name: &str) {
        let status = self.request("PUT", &format!("/{name}")).expect("moto answers");
        assert_eq!(status, 200, "creating bucket `{name}` on moto:\n{}", self.log_text());
    }

    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        s.read_to_string(&mut response)?;
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:.80}")))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Only the process this value started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
