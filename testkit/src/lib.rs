//! Test support shared by the engine's and the end-to-end tests: free loopback ports and the real
//! servers tests talk to, each started on its own port and stopped when dropped.
//!
//! A server that is not installed is a test failure with a message saying how to install it,
//! never a silent skip: `scripts/test.sh` installs all of them.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

pub mod moto;
pub mod postgres;
pub mod tls;

/// A TCP port that was free a moment ago on 127.0.0.1, and never handed out before in this
/// process. The kernel may give a port back as soon as it is released, and a server restarted on
/// its port (kill, then start again) releases it for a while: without the memory, a test starting
/// alongside could be given that port and find the other test's server answering on it.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// The path of a server binary: `$ENV_VAR` if set, else `name` found on PATH or in `extra_dirs`.
/// Panics, naming how to get it, when it is nowhere.
pub fn require_binary(name: &str, env_var: &str, extra_dirs: &[&str], install_hint: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(extra_dirs.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is needed by this test and is not installed ({install_hint}); scripts/test.sh installs it, or set {env_var}"
    );
}

pub mod nats;
