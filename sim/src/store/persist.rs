//! `--state DIR`: the org on disk, so a restarted simulator is the same org.
//!
//! Layout:
//! - `org.json`: identity and secrets (mode 0600) and the data spec the dataset was generated from;
//! - `changes.jsonl`: every `apply_changes` call, in order. The dataset is not serialised: it is
//!   regenerated from the spec and the changes are replayed, which the generator's determinism makes
//!   exact and which keeps the file small however large the org;
//! - `jobs.json`: every job's metadata, rewritten atomically on each change;
//! - `results/<jobId>.jsonl`: a job's snapshot (first line the columns, then one JSON array per row);
//! - `tokens.json`: issued access tokens (mode 0600), so clients stay logged in across a restart;
//! - `replay/`: reserved for the Pub/Sub replay log. Nothing writes it yet: the log lives in
//!   memory, so replay ids do not survive a simulator restart.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::org::{OrgIdentity, write_private};
use crate::store::results::{Results, StoredRows};

/// The dataset's generating spec, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpecRecord {
    pub records: Vec<(String, usize)>,
    pub seed: u64,
    pub start: DateTime<Utc>,
    pub spread_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgFile {
    pub identity: OrgIdentity,
    pub data: DataSpecRecord,
}

/// One `Dataset::apply` call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub modifications: usize,
    pub inserts: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deletes: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge: Option<String>,
    pub at: DateTime<Utc>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ChangeRecord {
    pub fn batch(&self) -> crate::data::ChangeBatch {
        crate::data::ChangeBatch {
            modifications: self.modifications,
            inserts: self.inserts,
            deletes: self.deletes,
            delete_object: self.delete_object.clone(),
            purge: self.purge.clone(),
            now: self.at.timestamp(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Persist {
    dir: PathBuf,
}

impl Persist {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir.join("results"))?;
        fs::create_dir_all(dir.join("replay"))?;
        Ok(Persist { dir: dir.to_path_buf() })
    }

    /// Where a persisted Pub/Sub replay log is to live.
    pub fn replay_dir(&self) -> PathBuf {
        self.dir.join("replay")
    }

    pub fn load_org(&self) -> std::io::Result<Option<OrgFile>> {
        read_json(&self.dir.join("org.json"))
    }

    pub fn save_org(&self, org: &OrgFile) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(org).map_err(std::io::Error::other)?;
        write_private(&self.dir.join("org.json"), &bytes)
    }

    pub fn append_change(&self, change: &ChangeRecord) -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().create(true).append(true).open(self.dir.join("changes.jsonl"))?;
        let mut line = serde_json::to_vec(change).map_err(std::io::Error::other)?;
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_data()
    }

    pub fn load_changes(&self) -> std::io::Result<Vec<ChangeRecord>> {
        let path = self.dir.join("changes.jsonl");
        if !path.exists() {
            return Ok(Vec::new());
        }
        let mut changes = Vec::new();
        for line in BufReader::new(fs::File::open(path)?).lines() {
            let line = line?;
            // A torn last line (killed mid-append) is the only tolerated damage: stop there.
            match serde_json::from_str(&line) {
                Ok(change) => changes.push(change),
                Err(_) => break,
            }
        }
        Ok(changes)
    }

    pub fn save_jobs<T: Serialize>(&self, jobs: &[T]) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(jobs).map_err(std::io::Error::other)?;
        write_atomic(&self.dir.join("jobs.json"), &bytes)
    }

    pub fn load_jobs<T: DeserializeOwned>(&self) -> std::io::Result<Vec<T>> {
        Ok(read_json(&self.dir.join("jobs.json"))?.unwrap_or_default())
    }

    pub fn save_tokens<T: Serialize>(&self, tokens: &T) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(tokens).map_err(std::io::Error::other)?;
        let tmp = self.dir.join("tokens.json.tmp");
        write_private(&tmp, &bytes)?;
        fs::rename(tmp, self.dir.join("tokens.json"))
    }

    pub fn load_tokens<T: DeserializeOwned>(&self) -> std::io::Result<Option<T>> {
        read_json(&self.dir.join("tokens.json"))
    }

    pub fn save_managed_subscriptions<T: Serialize>(&self, subscriptions: &[T]) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(subscriptions).map_err(std::io::Error::other)?;
        write_atomic(&self.dir.join("managed_subscriptions.json"), &bytes)
    }

    pub fn load_managed_subscriptions<T: DeserializeOwned>(&self) -> std::io::Result<Vec<T>> {
        Ok(read_json(&self.dir.join("managed_subscriptions.json"))?.unwrap_or_default())
    }

    fn results_path(&self, job_id: &str) -> PathBuf {
        self.dir.join("results").join(format!("{job_id}.jsonl"))
    }

    pub fn save_results(&self, job_id: &str, results: &Results) -> std::io::Result<()> {
        let path = self.results_path(job_id);
        let tmp = path.with_extension("tmp");
        let mut out = BufWriter::new(fs::File::create(&tmp)?);
        serde_json::to_writer(&mut out, results.columns()).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        for i in 0..results.len() {
            serde_json::to_writer(&mut out, &results.row(i)).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(tmp, path)
    }

    pub fn load_results(&self, job_id: &str) -> std::io::Result<Option<StoredRows>> {
        let path = self.results_path(job_id);
        if !path.exists() {
            return Ok(None);
        }
        let mut lines = BufReader::new(fs::File::open(path)?).lines();
        let Some(header) = lines.next() else {
            return Ok(None);
        };
        let columns: Vec<String> = serde_json::from_str(&header?).map_err(std::io::Error::other)?;
        let mut rows = Vec::new();
        for line in lines {
            rows.push(serde_json::from_str(&line?).map_err(std::io::Error::other)?);
        }
        Ok(Some(StoredRows { columns, rows }))
    }

    pub fn delete_results(&self, job_id: &str) -> std::io::Result<()> {
        match fs::remove_file(self.results_path(job_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write-then-rename, so a crash leaves the old file or the new one, never half of one.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(tmp, path)
}
