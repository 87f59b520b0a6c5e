//! One PostgreSQL cluster on disk: made by `initdb` into a scratch folder and renamed into place,
//! so a folder named `pgdata` is always complete; started and stopped through `pg_ctl`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::PgError;
use crate::user::RunAs;

const DATA: &str = "pgdata";
const PARTIAL: &str = "pgdata.partial-";
const LOG: &str = "bulkflow-server.log";

#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    run_as: RunAs,
    /// The folder holding `pgdata`: the caller's, or a mirror of it the `postgres` user owns.
    root: PathBuf,
    /// Set when `root` is a mirror: the caller's folder, which gets a `pgdata` link to it.
    linked_from: Option<PathBuf>,
    data: PathBuf,
}

impl Cluster {
    /// Makes sure a complete cluster exists for `dir`, making it (again) when it is missing or
    /// was left half made.
    pub fn prepare(dir: &Path, bin: PathBuf, run_as: RunAs) -> Result<Self, PgError> {
        std::fs::create_dir_all(dir).map_err(|source| PgError::Io { path: dir.to_path_buf(), source })?;
        let dir = dir.canonicalize().map_err(|source| PgError::Io { path: dir.to_path_buf(), source })?;
        let (root, linked_from) = match &run_as {
            RunAs::Postgres { home, .. } if !run_as.can_reach(&dir) => (mirror_root(Path::new(home), &dir), Some(dir)),
            _ => (dir, None),
        };
        if linked_from.is_some() {
            std::fs::create_dir_all(&root).map_err(|source| PgError::Io { path: root.clone(), source })?;
            run_as.give(&root)?;
        }
        let data = root.join(DATA);
        let cluster = Self { bin, run_as, root, linked_from, data };
        if !cluster.is_complete() {
            cluster.init()?;
        }
        if let Some(dir) = &cluster.linked_from {
            let link = dir.join(DATA);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(&cluster.data, &link)
                    .map_err(|source| PgError::Io { path: link, source })?;
            }
        }
        Ok(cluster)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// `initdb` writes `global/pg_control` last of what a server needs; a folder without it (or
    /// without `PG_VERSION`) is not a cluster.
    fn is_complete(&self) -> bool {
        self.data.join("PG_VERSION").is_file() && self.data.join("global").join("pg_control").is_file()
    }

    fn init(&self) -> Result<(), PgError> {
        // Scratch folders of killed runs. An `initdb` still running in one (its parent was
        // killed, it was not) fails once its folder is gone; a removal racing it may leave
        // files behind, which the next start removes.
        for entry in std::fs::read_dir(&self.root).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        if std::fs::symlink_metadata(&self.data).is_ok() {
            remove(&self.data)?;
        }
        let partial = self.root.join(format!("{PARTIAL}{}", std::process::id()));
        std::fs::create_dir(&partial).map_err(|source| PgError::Io { path: partial.clone(), source })?;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o700))
            .map_err(|source| PgError::Io { path: partial.clone(), source })?;
        self.run_as.give(&partial)?;
        let mut cmd = self.run_as.command(&self.bin("initdb"));
        cmd.args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "-D"]).arg(&partial);
        run(&mut cmd)?;
        std::fs::rename(&partial, &self.data).map_err(|source| PgError::Io { path: self.data.clone(), source })
    }

    /// The port of a server already running on this cluster (left by a killed parent), if any.
    /// A `postmaster.pid` whose process is gone, or is not PostgreSQL, is removed.
    pub fn running_port(&self) -> Result<Option<u16>, PgError> {
        let pid_file = self.data.join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(&pid_file) else { return Ok(None) };
        let mut lines = text.lines();
        let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
        let port = lines.nth(2).and_then(|l| l.trim().parse::<u16>().ok());
        let alive = pid.is_some_and(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres")
        });
        match (alive, port) {
            (true, Some(port)) => Ok(Some(port)),
            _ => {
                self.clear_stale_pid()?;
                Ok(None)
            }
        }
    }

    pub fn clear_stale_pid(&self) -> Result<(), PgError> {
        let pid_file = self.data.join("postmaster.pid");
        match std::fs::remove_file(&pid_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PgError::Io { path: pid_file, source: e }),
            _ => Ok(()),
        }
    }

    /// Starts the server detached: it keeps running if its caller dies, and the next start
    /// adopts it.
    pub fn start(&self, port: u16) -> Result<(), PgError> {
        let mut cmd = self.run_as.command(&self.bin("pg_ctl"));
        cmd.arg("-D").arg(&self.data).arg("-l").arg(self.data.join(LOG)).args([
            "-o",
            &format!("-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"),
            "-w",
            "-t",
            "60",
            "-s",
            "start",
        ]);
        run(&mut cmd).map_err(|e| match e {
            PgError::Command { command, status, output } => {
                PgError::Command { command, status, output: format!("{output}\nserver log:\n{}", self.log_tail()) }
            }
            other => other,
        })
    }

    /// Fast shutdown; a server that is not running is already stopped.
    pub fn stop(&self) -> Result<(), PgError> {
        if self.running_port()?.is_none() {
            return Ok(());
        }
        let mut cmd = self.run_as.command(&self.bin("pg_ctl"));
        cmd.arg("-D").arg(&self.data).args(["-m", "fast", "-w", "-t", "60", "-s", "stop"]);
        run(&mut cmd)
    }

    /// Whether the server accepts connections (not merely TCP: a recovering server refuses).
    pub fn wait_ready(&self, port: u16, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let ready = Command::new(self.bin("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.data.join(LOG)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn remove_mirror(&self) -> Result<(), PgError> {
        let Some(dir) = &self.linked_from else { return Ok(()) };
        let _ = std::fs::remove_file(dir.join(DATA));
        remove(&self.root)
    }
}

fn remove(path: &Path) -> Result<(), PgError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| PgError::Io { path: path.to_path_buf(), source })?;
    let result = if meta.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    result.map_err(|source| PgError::Io { path: path.to_path_buf(), source })
}

/// A folder in the `postgres` user's home standing for `dir`, named after it so the same caller
/// folder always maps to the same cluster (the demo's warehouse survives restarts).
fn mirror_root(home: &Path, dir: &Path) -> PathBuf {
    let text = dir.to_string_lossy();
    let readable: String = text.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let readable = readable.trim_start_matches('_');
    let short: String = readable.chars().rev().take(80).collect::<Vec<_>>().into_iter().rev().collect();
    // FNV-1a: stable across Rust versions, unlike the standard library's hasher.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    home.join("bulkflow").join(format!("{short}-{hash:016x}"))
}

/// Runs a command to completion; a non-zero exit is an error carrying its output.
pub fn run(cmd: &mut Command) -> Result<(), PgError> {
    let described = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| PgError::Io { path: PathBuf::from(cmd.get_program()), source })?;
    if out.status.success() {
        return Ok(());
    }
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Err(PgError::Command { command: described, status: out.status.to_string(), output: output.trim().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_folder_maps_to_one_stable_mirror() {
        let a = mirror_root(Path::new("/home/pg"), Path::new("/root/demo/warehouse"));
        assert_eq!(a, mirror_root(Path::new("/home/pg"), Path::new("/root/demo/warehouse")));
        assert_ne!(a, mirror_root(Path::new("/home/pg"), Path::new("/root/demo/warehousf")));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("root_demo_warehouse-"), "{name}");
        assert!(a.starts_with("/home/pg/bulkflow"));
    }
}
