//! A real PostgreSQL for tests, through the same launcher `bulkflow demo` uses: a cluster in a
//! temporary directory on a free loopback port, stopped and deleted when dropped.

use bulkflow_pgserver::PgServer;
use tempfile::TempDir;

pub struct Postgres {
    server: Option<PgServer>,
    _dir: TempDir,
}

impl Postgres {
    /// Starts a server. Panics (failing the test) when PostgreSQL is not installed or does not
    /// start: a test that needs it must fail, not skip.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for PostgreSQL");
        let server = PgServer::start(dir.path()).unwrap_or_else(|e| {
            panic!("PostgreSQL is needed by this test: {e}; scripts/test.sh installs it (Debian: apt-get install postgresql)")
        });
        Self { server: Some(server), _dir: dir }
    }

    fn server(&self) -> &PgServer {
        self.server.as_ref().expect("the server lives until drop")
    }

    /// Creates `name` (if missing) and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let server = self.server();
        server.create_database(name).unwrap_or_else(|e| panic!("creating database `{name}`: {e}"));
        server.url(name)
    }

    pub fn port(&self) -> u16 {
        self.server().port()
    }

    /// Fast shutdown (sessions cut), then a start on the same port and data.
    pub fn restart(&self) {
        self.server().restart().unwrap_or_else(|e| panic!("restarting PostgreSQL: {e}"));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.destroy();
        }
    }
}
