//! Files on local disk, written whole or not at all, with nothing left behind by a crash.
//!
//! A file is written and synced under `<root>/_bulkflow_staging/`, then renamed into place (same
//! file system, so the rename is atomic) and its directory synced. Readers never look in the
//! staging folder: Hive-style readers skip folders starting with `_`, and its files end in `.tmp`,
//! not `.parquet`. A process killed between the write and the rename leaves a `.tmp` file there;
//! the first write to that root by a later process removes the files of processes no longer
//! running. (The `object_store` crate's own local store stages beside the target instead, as
//! `name#N`, where such a leftover would sit among the data.)

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The staging folder under a task's root.
pub const STAGING_DIR: &str = "_bulkflow_staging";

/// Roots whose staging folder this process has cleared, shared by every task writing to them.
static CLEARED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `root/relative`, replacing what is there.
pub async fn put(root: &Path, relative: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    let (root, relative) = (root.to_path_buf(), relative.to_path_buf());
    tokio::task::spawn_blocking(move || put_blocking(&root, &relative, &bytes)).await.map_err(std::io::Error::other)?
}

fn put_blocking(root: &Path, relative: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fault::error_point("lake.write")?;
    let staging = root.join(STAGING_DIR);
    clear_once(&staging)?;
    std::fs::create_dir_all(&staging)?;
    let name = relative.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = staging.join(format!("{}-{}-{name}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    crate::fault::point("lake.staged");
    let target = root.join(relative);
    let dir = target.parent().unwrap_or(root);
    std::fs::create_dir_all(dir)?;
    if let Err(e) = std::fs::rename(&tmp, &target) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable once its folder is: a batch recorded written must not vanish.
    std::fs::File::open(dir)?.sync_all()?;
    crate::fault::point("lake.renamed");
    Ok(())
}

/// Removes the staging files of processes that no longer run, once per root and process.
fn clear_once(staging: &Path) -> std::io::Result<()> {
    let mut cleared = CLEARED.lock().unwrap_or_else(|p| p.into_inner());
    let cleared = cleared.get_or_insert_with(HashSet::new);
    if cleared.contains(staging) {
        return Ok(());
    }
    match std::fs::read_dir(staging) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                let owner = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('-').next());
                if owner.is_some_and(|pid| !running(pid)) {
                    tracing::info!(file = %path.display(), "removing a staging file left by a process that stopped mid-write");
                    std::fs::remove_file(&path)?;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    cleared.insert(staging.to_path_buf());
    Ok(())
}

/// Whether process `pid` (as a staging file names it) runs: this one, or one `/proc` shows. Where
/// there is no `/proc`, only this one counts.
fn running(pid: &str) -> bool {
    pid == std::process::id().to_string() || Path::new("/proc").join(pid).join("stat").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_appears_whole_and_a_dead_process_leftover_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join(STAGING_DIR);
        std::fs::create_dir_all(&staging).unwrap();
        // A process that cannot exist (pids are below 2^22 on Linux) died mid-write.
        let leftover = staging.join("99999999-0-b.parquet.tmp");
        std::fs::write(&leftover, b"half a file").unwrap();
        put(root.path(), Path::new("EventDate=2026-12-07/b.parquet"), b"whole".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(root.path().join("EventDate=2026-12-07/b.parquet")).unwrap(), b"whole");
        assert!(!leftover.exists(), "the dead process's staging file is removed");
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "nothing of ours is left staged");
        put(root.path(), Path::new("EventDate=2026-12-07/b.parquet"), b"again".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(root.path().join("EventDate=2026-12-07/b.parquet")).unwrap(), b"again");
    }
}
