//! Message payloads of the embedded bus, kept beside sled rather than in it.
//!
//! sled's cache counts a large value by its on-disk pointer, so it never evicted them: every batch
//! of an export stayed in memory until the stream's `max_age` removed it (140 MB per 1,000,000
//! rows, growing with the export). A payload over [`INLINE_MAX`] is therefore a file of its own,
//! written and made durable (file and folder) before the record naming it is applied, so a record
//! never names a file a crash could lose. Files of removed messages are deleted only once the
//! removal itself is durable (the next flush); a crash in between leaves orphans, which opening
//! the bus deletes.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::records::Payload;
use crate::bus::BusError;
use crate::store::group_flush::GroupFlush;

/// Payloads up to this size stay in the record: small, and cheap to cache.
pub const INLINE_MAX: usize = 16 * 1024;

/// The folder under the bus's folder.
const DIR: &str = "payloads";

#[derive(Debug)]
pub struct PayloadFiles {
    dir: PathBuf,
    /// Makes file names unique within the process; the time in the name makes them unique across runs.
    counter: AtomicU64,
    /// Files written by concurrent publishes share the fsync of the folder that names them.
    dir_flushes: GroupFlush,
    /// Files of messages whose removal is applied but may not be durable yet.
    doomed: Mutex<Vec<String>>,
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> BusError {
    let path = path.to_path_buf();
    move |source| BusError::Payload { path, op, source }
}

impl PayloadFiles {
    pub fn open(bus_dir: &Path) -> Result<Self, BusError> {
        let dir = bus_dir.join(DIR);
        fs::create_dir_all(&dir).map_err(io_err(&dir, "create"))?;
        Ok(Self { dir, counter: AtomicU64::new(0), dir_flushes: GroupFlush::default(), doomed: Mutex::default() })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Stores `payload` durably: inline when small, else in a new file.
    pub fn write(&self, payload: &[u8]) -> Result<Payload, BusError> {
        if payload.len() <= INLINE_MAX {
            return Ok(Payload::Inline(payload.to_vec()));
        }
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let name = format!("{nanos:016x}-{:08x}", self.counter.fetch_add(1, Ordering::Relaxed));
        let path = self.path(&name);
        let mut file = OpenOptions::new().write(true).create_new(true).open(&path).map_err(io_err(&path, "create"))?;
        file.write_all(payload).map_err(io_err(&path, "write"))?;
        file.sync_data().map_err(io_err(&path, "sync"))?;
        let ticket = self.dir_flushes.applied();
        self.dir_flushes
            .durable(ticket, || File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_err(&self.dir, "sync")))?;
        Ok(Payload::File { name, len: payload.len() as u64 })
    }

    /// The payload's bytes; `key` names the record for errors.
    pub fn read(&self, key: &[u8], payload: Payload) -> Result<Bytes, BusError> {
        match payload {
            Payload::Inline(bytes) => Ok(Bytes::from(bytes)),
            Payload::File { name, len } => {
                let path = self.path(&name);
                let bytes = fs::read(&path).map_err(|e| BusError::Corrupt {
                    key: super::records::show(key),
                    reason: format!("its payload file {}: {e}", path.display()),
                })?;
                if bytes.len() as u64 != len {
                    return Err(BusError::Corrupt {
                        key: super::records::show(key),
                        reason: format!("its payload file {} holds {} bytes, not {len}", path.display(), bytes.len()),
                    });
                }
                Ok(Bytes::from(bytes))
            }
        }
    }

    /// Deletes the file of a payload no record names (a publish that failed or was a duplicate).
    pub fn discard_now(&self, payload: &Payload) {
        if let Payload::File { name, .. } = payload {
            let _ = fs::remove_file(self.path(name));
        }
    }

    /// Deletes the files of removed messages once their removal is durable: the next
    /// [`PayloadFiles::flushed`] after the caller applied it.
    pub fn discard_later(&self, payloads: Vec<Payload>) {
        let names = payloads.into_iter().filter_map(|p| match p {
            Payload::File { name, .. } => Some(name),
            Payload::Inline(_) => None,
        });
        self.doomed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(names);
    }

    /// Runs `flush` (which makes every applied change durable), then deletes the files whose
    /// removal was applied before it started.
    pub fn flushed(&self, flush: impl FnOnce() -> Result<(), BusError>) -> Result<(), BusError> {
        let doomed = std::mem::take(&mut *self.doomed.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if let Err(e) = flush() {
            self.doomed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(doomed);
            return Err(e);
        }
        for name in doomed {
            let _ = fs::remove_file(self.path(&name));
        }
        Ok(())
    }

    /// Deletes every file no record names (a crash's leftovers); returns how many.
    pub fn remove_unreferenced(&self, referenced: &HashSet<String>) -> Result<usize, BusError> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir, "list"))? {
            let entry = entry.map_err(io_err(&self.dir, "list"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&name) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_payloads_stay_inline_and_large_ones_round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = PayloadFiles::open(dir.path()).unwrap();
        let small = files.write(b"small").unwrap();
        assert!(matches!(small, Payload::Inline(_)));
        let big: Vec<u8> = (0..=255u8).cycle().take(INLINE_MAX + 1).collect();
        let stored = files.write(&big).unwrap();
        let Payload::File { name, len } = stored.clone() else { panic!("{stored:?} is not a file") };
        assert_eq!(len, big.len() as u64);
        assert_eq!(files.read(b"m", stored.clone()).unwrap(), big);
        assert_eq!(files.read(b"m", small).unwrap(), &b"small"[..]);

        // A removal deletes the file only at the next flush, and not if that flush fails.
        files.discard_later(vec![stored.clone()]);
        assert!(files.path(&name).exists());
        assert!(files.flushed(|| Err(BusError::Unsupported("disk gone".into()))).is_err());
        assert!(files.path(&name).exists(), "a failed flush must not delete files");
        files.flushed(|| Ok(())).unwrap();
        assert!(!files.path(&name).exists());
        let err = files.read(b"m", stored).unwrap_err().to_string();
        assert!(err.contains("payload file") && err.contains(&name), "{err}");
    }

    #[test]
    fn opening_again_removes_only_the_files_no_record_names() {
        let dir = tempfile::tempdir().unwrap();
        let files = PayloadFiles::open(dir.path()).unwrap();
        let big = vec![7u8; INLINE_MAX * 2];
        let kept = files.write(&big).unwrap();
        let orphan = files.write(&big).unwrap();
        let (Payload::File { name: kept, .. }, Payload::File { name: orphan, .. }) = (kept, orphan) else {
            panic!("not files")
        };
        let files = PayloadFiles::open(dir.path()).unwrap();
        assert_eq!(files.remove_unreferenced(&HashSet::from([kept.clone()])).unwrap(), 1);
        assert!(files.path(&kept).exists() && !files.path(&orphan).exists());
    }
}
