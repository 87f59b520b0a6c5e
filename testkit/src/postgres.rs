//! A real PostgreSQL for tests, through the same launcher `bulkflow demo` uses: a cluster in a
//! temporary directory on a free loopback port, stopped and deleted when dropped.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

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

    /// Restarts the server serving TLS with `cert` and `key` (PEM files), and refusing TCP
    /// connections that are not TLS: what a client gets is then TLS or nothing.
    pub fn require_tls(&self, cert: &Path, key: &Path) {
        let data = self.server().data_dir();
        let owner = std::fs::metadata(data).expect("the data directory");
        for (from, name) in [(cert, "server.crt"), (key, "server.key")] {
            let to = data.join(name);
            std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
            // PostgreSQL refuses a key others may read, and must own what it reads.
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            std::os::unix::fs::chown(&to, Some(owner.uid()), Some(owner.gid())).expect("chown");
        }
        let mut conf =
            std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).expect("postgresql.conf");
        conf.write_all(b"\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
            .expect("postgresql.conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .expect("pg_hba.conf");
        self.restart();
    }

    /// Fast shutdown (sessions cut); the server stays down until [`Postgres::start_again`].
    pub fn stop(&self) {
        self.server().stop().unwrap_or_else(|e| panic!("stopping PostgreSQL: {e}"));
    }

    /// Starts a stopped server on the same port and data.
    pub fn start_again(&self) {
        self.server().start_again().unwrap_or_else(|e| panic!("starting PostgreSQL again: {e}"));
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
