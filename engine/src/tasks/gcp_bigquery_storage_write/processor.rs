//! The `gcp_bigquery_storage_write` task's behaviour: apply each batch to the table (upsert or
//! delete by `Id`) through the Storage Write API, then pass the event on unchanged. The table's
//! name is rendered and the client built on the first batch, so a flow loads and starts without
//! BigQuery being reachable.
//!
//! With `BIGQUERY_EMULATOR_HOST` set (`host:port`, the variable Google's client libraries read for
//! emulators) the task talks plain gRPC to it without credentials; otherwise `credentials_path`
//! must name a service account key.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::OnceCell;

use super::config::BigQueryWriteConfig;
use crate::env::EnvLookup;
use crate::event::Event;
use crate::flow::template::Template;
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};
use crate::tls::Trust;
use crate::warehouse::bigquery::auth::{BIGQUERY_SCOPE, ServiceAccountKey, TokenSource};
use crate::warehouse::bigquery::{BigQueryWarehouse, TableRef};
use crate::warehouse::{ChangeType, apply_event};

/// The environment variable naming an emulator to use instead of BigQuery.
pub const EMULATOR_HOST: &str = "BIGQUERY_EMULATOR_HOST";

pub struct BigQueryWriteProcessor {
    flow: String,
    task: String,
    config: BigQueryWriteConfig,
    /// `credentials_path`, already mapped under the credentials root.
    credentials: Option<PathBuf>,
    change: ChangeType,
    env: EnvLookup,
    trust: Trust,
    warehouse: OnceCell<BigQueryWarehouse>,
}

impl BigQueryWriteProcessor {
    pub fn new(
        flow: &str,
        task: &str,
        config: &BigQueryWriteConfig,
        credentials: Option<PathBuf>,
        env: EnvLookup,
        trust: Trust,
    ) -> Self {
        Self {
            flow: flow.to_string(),
            task: task.to_string(),
            config: config.clone(),
            credentials,
            change: config.change_type,
            env,
            trust,
            warehouse: OnceCell::new(),
        }
    }

    fn fatal(&self, message: impl std::fmt::Display) -> TaskError {
        TaskError::Fatal(format!("task `{}`: {message}", self.task))
    }

    fn render(&self, key: &str, template: &Template, event: &Event) -> Result<String, TaskError> {
        let value = event.render(template, &self.env).map_err(|e| self.fatal(format!("`{key}`: {e}")))?;
        if value.trim().is_empty() {
            return Err(self.fatal(format!("`{key}` renders empty")));
        }
        Ok(value)
    }

    async fn warehouse(&self, event: &Event) -> Result<&BigQueryWarehouse, TaskError> {
        self.warehouse
            .get_or_try_init(|| async {
                let table = TableRef {
                    project: self.render("project_id", &self.config.project_id, event)?,
                    dataset: self.render("dataset_id", &self.config.dataset_id, event)?,
                    table: self.render("table_id", &self.config.table_id, event)?,
                };
                if let Some(host) = (self.env)(EMULATOR_HOST).filter(|h| !h.trim().is_empty()) {
                    tracing::info!(flow = self.flow, task = self.task, %table, emulator = host, "BigQuery emulator");
                    return BigQueryWarehouse::emulator(host.trim(), table).map_err(|e| self.fatal(e));
                }
                let Some(path) = &self.credentials else {
                    return Err(self.fatal(format!(
                        "no `credentials_path` (a service account key) and no {EMULATOR_HOST} to write without one"
                    )));
                };
                let key = ServiceAccountKey::read(path).map_err(|e| self.fatal(e))?;
                let tokens =
                    TokenSource::new(key, path.clone(), BIGQUERY_SCOPE, &self.trust).map_err(|e| self.fatal(e))?;
                BigQueryWarehouse::google(table, Arc::new(tokens), &self.trust).map_err(|e| self.fatal(e))
            })
            .await
    }
}

impl Processor for BigQueryWriteProcessor {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let warehouse = self.warehouse(&event).await?;
            let rows = apply_event(warehouse, "gcp_bigquery_storage_write", &event, self.change).await?;
            tracing::debug!(
                flow = self.flow,
                task = self.task,
                event = event.id,
                rows,
                table = %warehouse.table(),
                "wrote batch to BigQuery"
            );
            out.emit(event).await
        })
    }
}
