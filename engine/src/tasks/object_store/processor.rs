//! The `object_store` task's behaviour: render the path, split the batch by partition, encode each
//! part and upload it under a name derived from the batch id. Then pass the event on unchanged.

use std::path::PathBuf;

use object_store::path::Path as ObjectPath;

use super::config::{FileFormat, ObjectStoreConfig};
use super::encode::encode;
use super::local;
use super::partition::Partitioner;
use super::store::StoreFactory;
use super::upload::{MULTIPART_THRESHOLD, put};
use crate::env::EnvLookup;
use crate::event::{Event, EventData};
use crate::file_name::file_stem;
use crate::flow::template::Template;
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};
use crate::tls::Trust;
use crate::warehouse::sweep::SweepPart;

pub struct ObjectStoreProcessor {
    flow: String,
    task: String,
    path: Template,
    format: FileFormat,
    partitioner: Partitioner,
    stores: StoreFactory,
    env: EnvLookup,
    multipart_threshold: usize,
}

impl ObjectStoreProcessor {
    /// `credentials` is the task's `credentials_path` already mapped under the credentials root.
    pub fn new(
        flow: &str,
        task: &str,
        config: &ObjectStoreConfig,
        credentials: Option<PathBuf>,
        env: EnvLookup,
        trust: Trust,
    ) -> Self {
        Self {
            flow: flow.to_string(),
            task: task.to_string(),
            path: config.path.clone(),
            format: config.format,
            partitioner: Partitioner::new(config.hive_partition_options.as_ref()),
            stores: StoreFactory::new(credentials, config.client_options.clone(), env.clone()).with_trust(trust),
            env,
            multipart_threshold: MULTIPART_THRESHOLD,
        }
    }

    /// Uploads above `bytes` go up in parts of that size (tests use a small value).
    pub fn with_multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// Writes the event's batch; returns the paths written, relative to nothing (full store paths).
    /// A sweep's part (live `Id`s, see [`crate::warehouse::sweep`]) is not rows of the object and
    /// is not written: the lake keeps rows as they came.
    pub async fn write(&self, event: &Event) -> Result<Vec<ObjectPath>, TaskError> {
        if SweepPart::of(&event.meta).is_some() {
            tracing::debug!(flow = self.flow, task = self.task, event = event.id, "a sweep part: nothing to write");
            return Ok(Vec::new());
        }
        let fatal = |e: &dyn std::fmt::Display| TaskError::Fatal(format!("batch `{}`: {e}", event.id));
        let EventData::Arrow(batch) = &event.data else {
            return Err(fatal(&"not an Arrow batch; object_store writes the batches `convert` produces"));
        };
        let location = event.render(&self.path, &self.env).map_err(|e| fatal(&e))?;
        // A bad path, credentials file or option is a configuration problem: retrying cannot fix it.
        let target = self.stores.target(&location).map_err(|e| fatal(&e))?;
        let parts = self.partitioner.split(event, batch).map_err(|e| fatal(&e))?;
        let name = format!("{}.{}", file_stem(&event.id), self.format.extension());
        let mut written = Vec::with_capacity(parts.len());
        for (dir, part) in parts {
            if part.num_rows() == 0 {
                continue;
            }
            let mut path = target.prefix.clone();
            let mut relative = PathBuf::new();
            for segment in dir.split('/').filter(|s| !s.is_empty()) {
                path = path.join(segment);
                relative.push(segment);
            }
            let path = path.join(name.as_str());
            relative.push(&name);
            let bytes = encode(&part, self.format).map_err(|e| fatal(&e))?;
            let size = bytes.len();
            // Network, disk and server errors may pass: the worker retries per the task's `retry`.
            let retryable = |e: &dyn std::fmt::Display| {
                TaskError::Retryable(format!("batch `{}`: writing `{path}`: {e}", event.id))
            };
            match &target.local {
                Some(root) => local::put(root, &relative, bytes).await.map_err(|e| retryable(&e))?,
                None => put(target.store.as_ref(), &path, bytes, self.multipart_threshold)
                    .await
                    .map_err(|e| retryable(&e))?,
            }
            crate::metrics::global().written(&self.flow, &self.task, size as u64);
            tracing::debug!(flow = self.flow, task = self.task, event = event.id, path = %path, rows = part.num_rows(), bytes = size, "wrote file");
            written.push(path);
        }
        Ok(written)
    }
}

impl Processor for ObjectStoreProcessor {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            self.write(&event).await?;
            out.emit(event).await
        })
    }
}
