//! The launcher against real PostgreSQL binaries, including the crashes it must recover from: a
//! parent SIGKILLed during `initdb`, and one SIGKILLed while its server runs.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulkflow_pgserver::{PgServer, find_bin_dir};

/// Runs `psql` and returns its unaligned output.
fn psql(server: &PgServer, database: &str, sql: &str) -> String {
    let out = Command::new(find_bin_dir().expect("PostgreSQL is installed").join("psql"))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &server.port().to_string(), "-d", database, "-c", sql])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A temp folder the `postgres` user can enter, so the cluster lives right inside it.
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// This test binary run again as a child process, doing `action` on `dir` (see `helper`).
fn child(action: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["helper", "--exact", "--nocapture", "--test-threads=1"])
        .env("BULKFLOW_PG_HELPER", action)
        .env("BULKFLOW_PG_HELPER_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("the test binary runs again")
}

/// Not a test of its own: the child side of the crash tests. Without the variable it does nothing.
#[test]
fn helper() {
    let (Ok(action), Ok(dir)) = (std::env::var("BULKFLOW_PG_HELPER"), std::env::var("BULKFLOW_PG_HELPER_DIR")) else {
        return;
    };
    let server = PgServer::start(Path::new(&dir)).expect("server starts");
    if action == "run" {
        server.create_database("left").expect("create database");
        println!("port={}", server.port());
        std::thread::sleep(Duration::from_secs(600));
    }
}

#[test]
fn starts_creates_a_database_and_keeps_data_across_a_restart() {
    let dir = open_dir();
    let server = PgServer::start(dir.path()).expect("server starts");
    assert!(server.data_dir().starts_with(dir.path().canonicalize().unwrap()));
    server.create_database("warehouse").expect("create database");
    server.create_database("warehouse").expect("creating it again is fine");
    assert!(server.create_database("bad name;").is_err());
    psql(&server, "warehouse", "CREATE TABLE t (\"Id\" text PRIMARY KEY); INSERT INTO t VALUES ('001')");
    assert_eq!(server.url("warehouse"), format!("postgres://postgres@127.0.0.1:{}/warehouse", server.port()));

    // A second start finds the running server and adopts it.
    let again = PgServer::start(dir.path()).expect("adopts");
    assert_eq!(again.port(), server.port());

    server.restart().expect("restart");
    assert_eq!(psql(&server, "warehouse", "SELECT \"Id\" FROM t"), "001");
    server.stop().expect("stop");
    server.stop().expect("stopping a stopped server is fine");

    let restarted = PgServer::start(dir.path()).expect("starts on the old data");
    assert_eq!(psql(&restarted, "warehouse", "SELECT count(*) FROM t"), "1");
    restarted.destroy().expect("destroy");
}

#[test]
fn a_parent_killed_during_initdb_leaves_a_folder_the_next_start_makes_again() {
    let dir = open_dir();
    let mut kid = child("init", dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    let partial = loop {
        let found = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("pgdata.partial-"));
        // Let initdb write something before the kill.
        if let Some(e) = found.filter(|e| std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some())) {
            break e.path();
        }
        assert!(Instant::now() < deadline, "initdb never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The whole group: the child, runuser and initdb, as a power cut would.
    Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", kid.id())]).status().expect("kill");
    let _ = kid.wait();
    assert!(!dir.path().join("pgdata").exists(), "initdb was killed before it finished");

    let server = PgServer::start(dir.path()).expect("starts after the killed initdb");
    assert_eq!(psql(&server, "postgres", "SELECT 1"), "1");
    assert!(!partial.exists(), "the half-made folder is gone");
    server.destroy().expect("destroy");
}

#[test]
fn a_server_left_running_by_a_killed_parent_is_adopted() {
    let dir = open_dir();
    let mut kid = child("run", dir.path());
    // The test harness prints its own lines first.
    let port: u16 = BufReader::new(kid.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split("port=").nth(1).and_then(|p| p.trim().parse().ok()))
        .expect("the child reports port=N");
    Command::new("kill").args(["-KILL", &kid.id().to_string()]).status().expect("kill");
    let _ = kid.wait();

    let server = PgServer::start(dir.path()).expect("starts");
    assert_eq!(server.port(), port, "the running server is adopted, not a second one started");
    assert_eq!(psql(&server, "left", "SELECT current_database()"), "left");
    server.destroy().expect("destroy");
}

#[test]
fn a_stale_pid_file_is_cleared() {
    let dir = open_dir();
    let server = PgServer::start(dir.path()).expect("starts");
    server.stop().expect("stop");
    // A pid file naming a live process that is not PostgreSQL (this test), as after a reboot.
    let pid_file = server.data_dir().join("postmaster.pid");
    std::fs::write(&pid_file, format!("{}\n{}\n0\n5\n", std::process::id(), server.data_dir().display())).unwrap();
    let server = PgServer::start(dir.path()).expect("starts despite the stale pid file");
    assert_eq!(psql(&server, "postgres", "SELECT 1"), "1");
    server.destroy().expect("destroy");
}

#[test]
fn a_private_folder_still_gets_a_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let server = PgServer::start(dir.path()).expect("starts in a 0700 folder");
    assert_eq!(psql(&server, "postgres", "SELECT 1"), "1");
    // As root the cluster lives where `postgres` can reach it, linked from the caller's folder.
    assert!(dir.path().join("pgdata").join("PG_VERSION").exists());
    let data = server.data_dir().to_path_buf();
    server.destroy().expect("destroy");
    if !data.starts_with(dir.path().canonicalize().unwrap()) {
        assert!(!data.exists(), "destroy removes the mirror");
    }
}
