//! Where an export writes: a local folder or any `object_store` URL (`s3://`, `gs://`, `az://`),
//! with the cloud's usual environment (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
//! `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, ...) as its credentials.
//!
//! A file appears whole or not at all: on disk it is written under a hidden name and renamed;
//! in a bucket it is a multipart upload, which makes no object until it completes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::checkpoint::{self, Checkpoint};
use super::error::ExportError;

/// Parts of a multipart upload: S3 wants at least 5 MiB for all but the last.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once per file.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug)]
pub enum Out {
    Local {
        dir: PathBuf,
        /// Held while the export runs: two exports into one folder would overwrite each other's files.
        _lock: std::fs::File,
    },
    Remote {
        url: String,
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    },
}

impl Out {
    pub fn open(location: &str) -> Result<Self, ExportError> {
        let location = location.trim();
        if location.is_empty() {
            return Err(ExportError::input("--out", "empty; give a folder or a URL".into()));
        }
        if !location.contains("://") {
            return Self::local(Path::new(location));
        }
        let bad = |reason: String| ExportError::input("--out", format!("`{location}`: {reason}"));
        let url = url::Url::parse(location).map_err(|e| bad(e.to_string()))?;
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| bad("not a local file URL".into()))?;
            return Self::local(&path);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in the URL; set the cloud's environment variables".into()));
        }
        // The cloud's environment can turn certificate checks off (object_store reads
        // `*_ALLOW_INVALID_CERTIFICATES`); that is said, never silent.
        for name in
            ["AWS_ALLOW_INVALID_CERTIFICATES", "GOOGLE_ALLOW_INVALID_CERTIFICATES", "AZURE_ALLOW_INVALID_CERTIFICATES"]
        {
            if std::env::var(name).is_ok_and(|v| crate::tls::turns_verification_off(name, &v)) {
                tracing::warn!(
                    variable = name,
                    "the environment turns TLS certificate verification off for --out: any server can pose as the bucket"
                );
            }
        }
        let built: Result<Box<dyn ObjectStore>, object_store::Error> = match url.scheme() {
            "s3" | "s3a" => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(location);
                // An S3-compatible server on plain HTTP (MinIO, moto) is named by its endpoint.
                let http = b
                    .get_config_value(&object_store::aws::AmazonS3ConfigKey::Endpoint)
                    .is_some_and(|e| e.starts_with("http://"));
                if http {
                    b = b.with_allow_http(true);
                }
                b.build().map(|s| Box::new(s) as Box<dyn ObjectStore>)
            }
            "gs" => object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(location)
                .build()
                .map(|s| Box::new(s) as Box<dyn ObjectStore>),
            "az" | "azure" | "abfs" | "abfss" => object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(location)
                .build()
                .map(|s| Box::new(s) as Box<dyn ObjectStore>),
            other => {
                return Err(bad(format!("scheme `{other}` is not supported; use a folder, s3://, gs:// or az://")));
            }
        };
        let store = built.map_err(|e| bad(e.to_string()))?;
        let prefix = ObjectPath::from_url_path(url.path()).map_err(|e| bad(e.to_string()))?;
        Ok(Self::Remote { url: location.to_string(), store: Arc::from(store), prefix })
    }

    fn local(dir: &Path) -> Result<Self, ExportError> {
        let dir = std::path::absolute(dir).map_err(|e| ExportError::input("--out", e.to_string()))?;
        let shown = dir.display().to_string();
        std::fs::create_dir_all(&dir).map_err(|e| ExportError::output(&shown, format!("cannot create it: {e}")))?;
        let lock_path = dir.join("_bulkflow_export.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| ExportError::output(lock_path.display().to_string(), e))?;
        fs2::FileExt::try_lock_exclusive(&lock).map_err(|_| {
            ExportError::output(&shown, "another bulkflow export is writing to this folder; wait for it to end")
        })?;
        // Leftovers of a process killed mid-file; with the lock held, nobody is writing them.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".part-") && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(Self::Local { dir, _lock: lock })
    }

    pub fn location(&self) -> String {
        match self {
            Self::Local { dir, .. } => dir.display().to_string(),
            Self::Remote { url, .. } => url.clone(),
        }
    }

    fn object(&self, name: &str) -> ObjectPath {
        match self {
            Self::Remote { prefix, .. } => prefix.clone().join(name),
            Self::Local { .. } => ObjectPath::from(name),
        }
    }

    pub async fn read_checkpoint(&self) -> Result<Option<Checkpoint>, ExportError> {
        let what = format!("{}/{}", self.location(), checkpoint::FILE_NAME);
        let bytes = match self {
            Self::Local { dir, .. } => match std::fs::read(dir.join(checkpoint::FILE_NAME)) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(ExportError::output(what, e)),
            },
            Self::Remote { store, .. } => match store.get(&self.object(checkpoint::FILE_NAME)).await {
                Ok(r) => r.bytes().await.map_err(|e| ExportError::output(&what, e))?.to_vec(),
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(ExportError::output(what, e)),
            },
        };
        Checkpoint::from_json(&self.location(), &bytes).map(Some)
    }

    /// Replaces the checkpoint atomically and durably.
    pub async fn write_checkpoint(&self, cp: &Checkpoint) -> Result<(), ExportError> {
        let what = format!("{}/{}", self.location(), checkpoint::FILE_NAME);
        match self {
            Self::Local { dir, .. } => {
                let tmp = dir.join(format!(".{}.tmp", checkpoint::FILE_NAME));
                let target = dir.join(checkpoint::FILE_NAME);
                let write = || -> std::io::Result<()> {
                    let mut f = std::fs::File::create(&tmp)?;
                    f.write_all(&cp.to_json())?;
                    put_in_place(f, &tmp, &target)
                };
                write().map_err(|e| ExportError::output(what, e))
            }
            Self::Remote { store, .. } => store
                .put(&self.object(checkpoint::FILE_NAME), PutPayload::from(cp.to_json()))
                .await
                .map(|_| ())
                .map_err(|e| ExportError::output(what, e)),
        }
    }

    /// [`Self::write_checkpoint`] from synchronous code on the runtime (a multi-threaded one).
    pub fn write_checkpoint_now(&self, cp: &Checkpoint) -> Result<(), ExportError> {
        let runtime = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| runtime.block_on(self.write_checkpoint(cp)))
    }

    /// Removes an earlier export's files and checkpoint (`--force`).
    pub async fn clear(&self) -> Result<(), ExportError> {
        let is_ours = |name: &str| name.starts_with("part-") || name == checkpoint::FILE_NAME;
        match self {
            Self::Local { dir, .. } => {
                let entries = std::fs::read_dir(dir).map_err(|e| ExportError::output(dir.display().to_string(), e))?;
                for entry in entries.flatten() {
                    if is_ours(&entry.file_name().to_string_lossy()) {
                        std::fs::remove_file(entry.path())
                            .map_err(|e| ExportError::output(entry.path().display().to_string(), e))?;
                    }
                }
                Ok(())
            }
            Self::Remote { store, prefix, url } => {
                let listed: Vec<_> =
                    store.list(Some(prefix)).try_collect().await.map_err(|e| ExportError::output(url, e))?;
                for meta in listed {
                    if meta.location.filename().is_some_and(is_ours) && meta.location.prefix_matches(prefix) {
                        store.delete(&meta.location).await.map_err(|e| ExportError::output(url, e))?;
                    }
                }
                Ok(())
            }
        }
    }

    /// A file being written; it appears under `name` only when [`Sink::finish`] succeeds.
    pub fn create(&self, name: &str) -> Result<Sink, ExportError> {
        match self {
            Self::Local { dir, .. } => {
                let tmp = dir.join(format!(".{name}.tmp"));
                let file =
                    std::fs::File::create(&tmp).map_err(|e| ExportError::output(tmp.display().to_string(), e))?;
                Ok(Sink::Local { file: std::io::BufWriter::with_capacity(1 << 20, file), tmp, target: dir.join(name) })
            }
            Self::Remote { store, url, .. } => {
                let path = self.object(name);
                let runtime = tokio::runtime::Handle::current();
                let upload = runtime
                    .block_on(store.put_multipart(&path))
                    .map_err(|e| ExportError::output(format!("{url}/{name}"), e))?;
                Ok(Sink::Remote {
                    upload: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
                    runtime,
                    what: format!("{url}/{name}"),
                })
            }
        }
    }
}

/// One file's bytes on their way out. Used from a blocking thread: encoders write to it as to any
/// `Write`, and a remote file's parts go up in the background as they fill.
pub enum Sink {
    Local { file: std::io::BufWriter<std::fs::File>, tmp: PathBuf, target: PathBuf },
    Remote { upload: WriteMultipart, runtime: tokio::runtime::Handle, what: String },
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Local { file, .. } => file.write(buf),
            Self::Remote { upload, runtime, .. } => {
                upload.write(buf);
                // Bounds the memory of parts waiting to go up.
                runtime.block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT)).map_err(std::io::Error::other)?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Local { file, .. } => file.flush(),
            Self::Remote { .. } => Ok(()),
        }
    }
}

impl Sink {
    /// Makes the file visible under its name, durably.
    pub fn finish(self) -> Result<(), ExportError> {
        match self {
            Self::Local { file, tmp, target } => {
                let shown = target.display().to_string();
                let file = file.into_inner().map_err(|e| ExportError::output(&shown, e.error()))?;
                put_in_place(file, &tmp, &target).map_err(|e| ExportError::output(&shown, e))
            }
            Self::Remote { upload, runtime, what } => {
                runtime.block_on(upload.finish()).map(|_| ()).map_err(|e| ExportError::output(what, e))
            }
        }
    }

    /// Drops a file that will not be finished.
    pub fn abort(self) {
        match self {
            Self::Local { file, tmp, .. } => {
                drop(file);
                let _ = std::fs::remove_file(tmp);
            }
            Self::Remote { upload, runtime, .. } => runtime.block_on(upload.abort()).unwrap_or_default(),
        }
    }
}

/// Syncs a file written at `tmp`, renames it to `target` and syncs the folder: once this returns,
/// `target` survives a crash whole, and until then it is untouched.
fn put_in_place(file: std::fs::File, tmp: &Path, target: &Path) -> std::io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, target)?;
    std::fs::File::open(target.parent().unwrap_or(Path::new(".")))?.sync_all()
}
