//! PostgreSQL refuses to run as root. A root caller (CI, the demo in a container) runs every
//! server command as the `postgres` user that the Debian package creates.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::PgError;

#[derive(Debug, Clone)]
pub enum RunAs {
    /// Not root: commands run as the caller.
    Caller,
    /// Root: commands run as `postgres` through `runuser`.
    Postgres { uid: u32, gid: u32, home: String },
}

impl RunAs {
    /// The effective user is the owner of `/proc/self`; no `unsafe` call to `geteuid` needed.
    pub fn detect() -> Self {
        let is_root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        if !is_root {
            return Self::Caller;
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 6 && f[0] == "postgres")
            .and_then(|f| Some(Self::Postgres { uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5].into() }))
            // Root without a `postgres` user: initdb will say it cannot run as root, plainly.
            .unwrap_or(Self::Caller)
    }

    /// A command for `program`, run as the server's user.
    pub fn command(&self, program: &Path) -> Command {
        match self {
            Self::Caller => Command::new(program),
            Self::Postgres { .. } => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(program);
                cmd
            }
        }
    }

    /// Whether the server's user can enter `dir` (every folder above it must let it through).
    pub fn can_reach(&self, dir: &Path) -> bool {
        match self {
            Self::Caller => true,
            Self::Postgres { .. } => Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-x"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success()),
        }
    }

    /// Hands `path` to the server's user (a no-op for a non-root caller).
    pub fn give(&self, path: &Path) -> Result<(), PgError> {
        match self {
            Self::Caller => Ok(()),
            Self::Postgres { uid, gid, .. } => std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .map_err(|source| PgError::Io { path: path.to_path_buf(), source }),
        }
    }
}
