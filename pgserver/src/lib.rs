//! A private PostgreSQL server: `initdb` and `postgres` from the machine's PostgreSQL packages,
//! listening on one loopback port with trust authentication, its data in a directory the caller
//! chooses. `bulkflow demo` keeps its warehouse in one; the tests start one per test.
//!
//! Starting is safe to repeat after any crash: a data directory half made by a killed `initdb`
//! is made again, a server left running by a killed parent is adopted, and a stale
//! `postmaster.pid` is cleared. The server runs detached (through `pg_ctl`), so it outlives a
//! killed parent by design and [`PgServer::stop`] is what ends it.

mod binaries;
mod cluster;
mod user;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use binaries::find_bin_dir;
use cluster::Cluster;
use user::RunAs;

/// How long a starting server may take to accept connections.
const START_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "PostgreSQL's server binaries are not installed (looked for `initdb` in {looked}); Debian: apt-get install postgresql, or set BULKFLOW_PG_BIN to their folder"
    )]
    NotInstalled { looked: String },
    #[error("PostgreSQL data directory `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{command}` failed ({status}): {output}")]
    Command { command: String, status: String, output: String },
    #[error("PostgreSQL in `{data}` did not accept connections on 127.0.0.1:{port} within {waited:?}; its log:\n{log}")]
    NotReady { data: PathBuf, port: u16, waited: Duration, log: String },
    #[error("`{0}` is not a valid database name: use letters, digits and _")]
    BadDatabaseName(String),
}

/// A running server. Dropping it leaves the server running (the demo keeps its warehouse up
/// between commands); call [`PgServer::stop`] to end it.
#[derive(Debug)]
pub struct PgServer {
    cluster: Cluster,
    port: u16,
}

impl PgServer {
    /// Starts (or adopts) the server whose files live under `dir` (created if missing), on a free
    /// loopback port when it has to start one.
    pub fn start(dir: &Path) -> Result<Self, PgError> {
        let bin = find_bin_dir()?;
        let run_as = RunAs::detect();
        let cluster = Cluster::prepare(dir, bin, run_as)?;
        if let Some(port) = cluster.running_port()? {
            if cluster.wait_ready(port, Duration::from_secs(10)) {
                return Ok(Self { cluster, port });
            }
            // Alive but not answering (stuck, or listening elsewhere): stop it and start afresh.
            cluster.stop()?;
        }
        let port = free_port()?;
        cluster.start(port)?;
        if !cluster.wait_ready(port, START_WAIT) {
            return Err(PgError::NotReady {
                data: cluster.data_dir().to_path_buf(),
                port,
                waited: START_WAIT,
                log: cluster.log_tail(),
            });
        }
        Ok(Self { cluster, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the cluster's files are: under the caller's directory, or (as root, when the
    /// `postgres` user cannot reach it) a directory of that user's, linked from the caller's.
    pub fn data_dir(&self) -> &Path {
        self.cluster.data_dir()
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE` (trust authentication: no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `name` unless it exists.
    pub fn create_database(&self, name: &str) -> Result<(), PgError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(PgError::BadDatabaseName(name.to_string()));
        }
        let mut cmd = Command::new(self.cluster.bin("createdb"));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", name]);
        match cluster::run(&mut cmd) {
            Err(PgError::Command { output, .. }) if output.contains("already exists") => Ok(()),
            other => other,
        }
    }

    /// Fast shutdown: open sessions are cut, committed data is on disk.
    pub fn stop(&self) -> Result<(), PgError> {
        self.cluster.stop()
    }

    /// Stops the server and starts it again on the same port and data.
    pub fn restart(&self) -> Result<(), PgError> {
        self.cluster.stop()?;
        self.start_again()
    }

    /// Starts a server [`PgServer::stop`] stopped, on the same port and data.
    pub fn start_again(&self) -> Result<(), PgError> {
        self.cluster.start(self.port)?;
        if self.cluster.wait_ready(self.port, START_WAIT) {
            Ok(())
        } else {
            Err(PgError::NotReady {
                data: self.cluster.data_dir().to_path_buf(),
                port: self.port,
                waited: START_WAIT,
                log: self.cluster.log_tail(),
            })
        }
    }

    /// Stops the server and deletes its files when they live outside the caller's directory
    /// (tests call this so a root run leaves nothing in the `postgres` user's home).
    pub fn destroy(self) -> Result<(), PgError> {
        self.cluster.stop()?;
        self.cluster.remove_mirror()
    }
}

/// Stops the server of `dir` if one is running (e.g. left up by an earlier process), without
/// starting one.
pub fn stop_dir(dir: &Path) -> Result<(), PgError> {
    Cluster::prepare(dir, find_bin_dir()?, RunAs::detect())?.stop()
}

fn free_port() -> Result<u16, PgError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| PgError::Io { path: PathBuf::from("127.0.0.1:0"), source })
}
