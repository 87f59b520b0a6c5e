//! The `convert` task's behaviour: cast each Arrow batch to the schema and pass it on with the same
//! id and meta, so dedupe and file names downstream still refer to the batch that came in.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::config::ConvertConfig;
use super::rejects::Rejects;
use crate::event::{Event, EventData};
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};
use crate::schema::TableSchema;
use crate::schema::cast::{CastError, Caster};

pub struct ConvertProcessor {
    flow: String,
    task: String,
    caster: Caster,
    rejects: Option<Rejects>,
    /// Extra columns already reported, so a dropped column is logged once, not once per batch.
    logged_drops: Mutex<BTreeSet<String>>,
}

impl ConvertProcessor {
    pub fn new(flow: &str, task: &str, config: &ConvertConfig, schema: TableSchema) -> Self {
        Self {
            flow: flow.to_string(),
            task: task.to_string(),
            caster: Caster::new(schema, config.extra_columns),
            rejects: config.rejects.as_ref().map(Rejects::new),
            logged_drops: Mutex::default(),
        }
    }

    fn convert(&self, event: &Event) -> Result<Event, TaskError> {
        let EventData::Arrow(input) = &event.data else {
            return Err(TaskError::Fatal(format!(
                "event `{}` is not an Arrow batch; convert casts the Arrow batches of Bulk API results",
                event.id
            )));
        };
        let fatal = |e: CastError| TaskError::Fatal(format!("batch `{}`: {e}", event.id));
        let cast = self.caster.cast(input).map_err(fatal)?;
        self.log_drops(&cast.dropped);
        if let Some(first) = cast.errors.first() {
            let Some(rejects) = &self.rejects else {
                return Err(fatal(CastError::BadValues { first: Box::new(first.clone()), total: cast.errors.len() }));
            };
            // An I/O failure here may pass (a full disk freed, a mount back): worth retrying.
            let path = rejects
                .write(&event.id, input, &cast.errors)
                .map_err(|e| TaskError::Retryable(format!("batch `{}`: {e}", event.id)))?;
            tracing::warn!(
                flow = self.flow, task = self.task, event = event.id,
                rejected_rows = input.num_rows() - cast.batch.num_rows(),
                first = %first, rejects = %path.display(),
                "rows that cannot be cast were written to the rejects file"
            );
        }
        let mut out = event.clone();
        out.data = EventData::Arrow(cast.batch);
        Ok(out)
    }

    fn log_drops(&self, dropped: &[String]) {
        if dropped.is_empty() {
            return;
        }
        let mut logged = self.logged_drops.lock().unwrap_or_else(|p| p.into_inner());
        let new: Vec<&str> = dropped.iter().filter(|c| logged.insert((*c).clone())).map(String::as_str).collect();
        if !new.is_empty() {
            tracing::info!(
                flow = self.flow,
                task = self.task,
                columns = new.join(", "),
                "dropping columns that are not in the schema (extra_columns: drop); logged once per column"
            );
        }
    }
}

impl Processor for ConvertProcessor {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            // Casting is CPU-bound and takes milliseconds per batch; running it inline keeps
            // per-event order simple, as scripts do.
            let converted = self.convert(&event)?;
            out.emit(converted).await
        })
    }
}
