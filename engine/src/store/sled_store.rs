//! The durable store: sled on local disk, one sled tree per [`Tree`].
//!
//! sled is not durable until `flush`, so every commit flushes before it returns. sled locks its
//! files against a second process, but reports that as a generic I/O error; we take our own lock
//! first so the operator gets a message that says what is going on.

use std::convert::Infallible;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs2::FileExt;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::batch::Write;
use super::group_flush::GroupFlush;
use super::{Batch, Commit, Entry, StateStore, StoreError, Tree};

/// Names the layout of everything in the directory: bump it when a change makes old data
/// unreadable, so an old directory fails to open instead of failing record by record.
const FORMAT: &str = "bulkflow-state/1";
const FORMAT_KEY: &[u8] = b"bulkflow_format";
const LOCK_FILE: &str = "bulkflow.lock";
const SLED_DIR: &str = "sled";

pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// Commits from several tasks at once share their fsyncs.
    flushes: GroupFlush,
    path: PathBuf,
    // Declared last so it is released only after sled has closed its files.
    _lock: File,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (creating if needed) the state directory `path`, locked to this process.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let prepare = |source| StoreError::Prepare { path: path.clone(), source };
        fs::create_dir_all(&path).map_err(prepare)?;
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(path.join(LOCK_FILE)).map_err(prepare)?;
        let contended = fs2::lock_contended_error().kind();
        if let Err(e) = retry_while_contended(|| lock.try_lock_exclusive(), |e| e.kind() == contended) {
            return Err(if e.kind() == contended { StoreError::InUse { path } } else { prepare(e) });
        }
        let config = sled::Config::new().path(path.join(SLED_DIR));
        let db = retry_while_contended(|| config.open(), is_sled_lock_contended)
            .map_err(|source| StoreError::Open { path: path.clone(), source })?;
        let trees = Tree::ALL
            .iter()
            .map(|&tree| db.open_tree(tree.name()).map_err(|source| StoreError::Backend { op: "open", tree, source }))
            .collect::<Result<Vec<_>, _>>()?;
        let store = Self { db, trees, flushes: GroupFlush::default(), path, _lock: lock };
        store.check_format()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree as usize]
    }

    fn check_format(&self) -> Result<(), StoreError> {
        let marker = self.db.get(FORMAT_KEY).map_err(|source| StoreError::Open { path: self.path.clone(), source })?;
        match marker {
            Some(found) if found == FORMAT.as_bytes() => Ok(()),
            Some(found) => Err(StoreError::IncompatibleFormat {
                path: self.path.clone(),
                found: String::from_utf8_lossy(&found).into_owned(),
                expected: FORMAT,
            }),
            None if self.trees.iter().all(sled::Tree::is_empty) => {
                self.db
                    .insert(FORMAT_KEY, FORMAT.as_bytes())
                    .map_err(|source| StoreError::Open { path: self.path.clone(), source })?;
                self.flush()
            }
            None => Err(StoreError::NotAStateStore { path: self.path.clone() }),
        }
    }

    /// Makes every change applied so far durable, sharing the fsync with commits flushing at the
    /// same moment.
    fn flush(&self) -> Result<(), StoreError> {
        let ticket = self.flushes.applied();
        self.flushes.durable(ticket, || self.db.flush().map(drop).map_err(|source| StoreError::Flush { source }))
    }
}

/// How long opening waits out a lock that looks held.
///
/// flock locks belong to the open file, which a child process forked by any thread shares until
/// it execs; and sled releases its files from a background thread after a drop. Either can make
/// a lock look held for a moment after its holder let go, so a reopen in the same process (or
/// one racing a process spawn) waits briefly instead of failing. A lock really held by another
/// process still fails, a little later.
const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_POLL: Duration = Duration::from_millis(20);

fn retry_while_contended<T, E>(
    mut attempt: impl FnMut() -> Result<T, E>,
    is_contended: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match attempt() {
            Err(e) if is_contended(&e) && Instant::now() < deadline => std::thread::sleep(LOCK_POLL),
            result => return result,
        }
    }
}

/// sled reports its own lock failing only as an I/O error with this text.
fn is_sled_lock_contended(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

impl StateStore for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree(tree).get(key).map(|v| v.map(|v| v.to_vec())).map_err(|source| StoreError::Backend {
            op: "get",
            tree,
            source,
        })
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        self.tree(tree)
            .scan_prefix(prefix)
            .map(|entry| {
                entry.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(|source| StoreError::Backend {
                    op: "scan",
                    tree,
                    source,
                })
            })
            .collect()
    }

    fn commit(&self, batch: Batch) -> Result<Commit, StoreError> {
        crate::fault::error_point("store.commit").map_err(|e| StoreError::Commit { source: sled::Error::Io(e) })?;
        if batch.is_empty() {
            return Ok(Commit::Applied);
        }
        let outcome = self.trees.as_slice().transaction(|views| {
            for expect in &batch.expects {
                let current = views[expect.tree as usize].get(&expect.key)?;
                if current.as_deref() != expect.value.as_deref() {
                    return Ok(Commit::Conflict { tree: expect.tree, key: expect.key.clone() });
                }
            }
            for write in &batch.writes {
                match write {
                    Write::Put { tree, key, value } => {
                        views[*tree as usize].insert(key.as_slice(), value.as_slice())?;
                    }
                    Write::Delete { tree, key } => {
                        views[*tree as usize].remove(key.as_slice())?;
                    }
                }
            }
            Ok::<_, ConflictableTransactionError<Infallible>>(Commit::Applied)
        });
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(TransactionError::Storage(source)) => return Err(StoreError::Commit { source }),
            Err(TransactionError::Abort(never)) => match never {},
        };
        if outcome == Commit::Applied {
            self.flush()?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::store::TempSled;

    fn fixture() -> TempSled {
        TempSled::new()
    }

    crate::store::conformance::conformance_tests!(fixture);

    /// Opens the sled inside a state directory directly, to plant data bulkflow would not write.
    fn open_raw(dir: &Path) -> sled::Db {
        let config = sled::Config::new().path(dir.join(SLED_DIR));
        retry_while_contended(|| config.open(), is_sled_lock_contended).unwrap()
    }

    fn put(store: &SledStore, key: &[u8], value: &[u8]) {
        let mut batch = Batch::new();
        batch.put(Tree::Runs, key, value.to_vec());
        assert_eq!(store.commit(batch).unwrap(), Commit::Applied);
    }

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        put(&SledStore::open(dir.path()).unwrap(), b"k", b"v");
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.get(Tree::Runs, b"k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn second_open_says_the_directory_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        let err = SledStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("in use by another bulkflow process"), "{msg}");
    }

    #[test]
    fn lock_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        drop(SledStore::open(dir.path()).unwrap());
        SledStore::open(dir.path()).unwrap();
    }

    #[test]
    fn another_format_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(SledStore::open(dir.path()).unwrap());
        {
            let raw = open_raw(dir.path());
            raw.insert(FORMAT_KEY, b"bulkflow-state/99".as_slice()).unwrap();
            raw.flush().unwrap();
        }
        let err = SledStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::IncompatibleFormat { .. }), "{err:?}");
        assert!(err.to_string().contains("bulkflow-state/99"), "{err}");
    }

    #[test]
    fn data_without_a_marker_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let raw = open_raw(dir.path());
            raw.open_tree("runs").unwrap().insert(b"k", b"v".as_slice()).unwrap();
            raw.flush().unwrap();
        }
        let err = SledStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::NotAStateStore { .. }), "{err:?}");
    }

    const CRASH_DIR: &str = "BULKFLOW_TEST_CRASH_DIR";

    /// Commits, then dies without unwinding or dropping anything: only what `commit` made durable
    /// can survive. Run in a child process by `committed_data_survives_a_crash`.
    #[test]
    #[ignore = "a helper run in a child process by committed_data_survives_a_crash"]
    fn crash_after_commit() {
        let dir = std::env::var(CRASH_DIR).expect("run by committed_data_survives_a_crash");
        let store = SledStore::open(dir).unwrap();
        for i in 0..100u32 {
            put(&store, &i.to_be_bytes(), b"durable");
        }
        std::process::abort();
    }

    #[test]
    fn committed_data_survives_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store::sled_store::tests::crash_after_commit"])
            .args(["--ignored", "--test-threads=1", "--nocapture"])
            .env(CRASH_DIR, dir.path())
            .status()
            .unwrap();
        assert!(!status.success(), "the child must have crashed, not exited: {status}");
        let store = SledStore::open(dir.path()).unwrap();
        for i in 0..100u32 {
            assert_eq!(
                store.get(Tree::Runs, &i.to_be_bytes()).unwrap().as_deref(),
                Some(b"durable".as_slice()),
                "record {i} lost"
            );
        }
    }
}
