//! The `postgres_write` task's behaviour: apply each batch to the table (upsert, delete, or
//! follow `IsDeleted`, by `"Id"`), then pass the event on unchanged. The connection is opened on the first batch, so a
//! warehouse that is down at start delays writes instead of stopping the engine.

use std::path::PathBuf;

use serde::Deserialize;
use tokio::sync::OnceCell;

use super::config::PostgresWriteConfig;
use crate::credentials::files as credentials;
use crate::env::EnvLookup;
use crate::event::Event;
use crate::flow::template::Template;
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};
use crate::schema::TableSchema;
use crate::tls::Trust;
use crate::warehouse::postgres::PostgresWarehouse;
use crate::warehouse::postgres::sql::TableName;
use crate::warehouse::{ChangeType, DeleteMode, apply_event};

/// `{"url": "postgres://user:password@host:port/database"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostgresCredentials {
    url: String,
}

pub struct PostgresWriteProcessor {
    flow: String,
    task: String,
    url: Option<Template>,
    /// `credentials_path`, already mapped under the credentials root.
    credentials: Option<PathBuf>,
    table: TableName,
    create: Option<TableSchema>,
    change: ChangeType,
    deletes: DeleteMode,
    env: EnvLookup,
    trust: Trust,
    warehouse: OnceCell<PostgresWarehouse>,
}

impl PostgresWriteProcessor {
    /// `schema` is the `schema_resource` read at load time; the table is created from it when
    /// `create_table` is set.
    pub fn new(
        flow: &str,
        task: &str,
        config: &PostgresWriteConfig,
        schema: Option<TableSchema>,
        credentials: Option<PathBuf>,
        env: EnvLookup,
        trust: Trust,
    ) -> Self {
        Self {
            flow: flow.to_string(),
            task: task.to_string(),
            url: config.url.clone(),
            credentials,
            table: TableName { schema: config.schema.clone(), table: config.table.clone() },
            create: if config.create_table { schema } else { None },
            change: config.change_type,
            deletes: config.deletes,
            env,
            trust,
            warehouse: OnceCell::new(),
        }
    }

    /// The flow's `url` when it renders to something, else the credentials file's.
    fn url(&self, event: &Event) -> Result<String, String> {
        if let Some(template) = &self.url {
            let url = event.render(template, &self.env).map_err(|e| e.to_string())?;
            if !url.trim().is_empty() {
                return Ok(url);
            }
        }
        let Some(path) = &self.credentials else {
            return Err("`url` renders empty and there is no `credentials_path` holding one".into());
        };
        let text = credentials::read(path).map_err(|e| e.to_string())?;
        let creds: PostgresCredentials =
            credentials::decode(path, &text, "a PostgreSQL credentials JSON ({\"url\": ...})")
                .map_err(|e| e.to_string())?;
        Ok(creds.url)
    }

    async fn warehouse(&self, event: &Event) -> Result<&PostgresWarehouse, TaskError> {
        self.warehouse
            .get_or_try_init(|| async {
                let url = self.url(event).map_err(|e| TaskError::Fatal(format!("task `{}`: {e}", self.task)))?;
                Ok(PostgresWarehouse::new(url, self.table.clone(), self.create.clone())
                    .with_deletes(self.deletes)
                    .with_trust(self.trust.clone()))
            })
            .await
    }
}

impl Processor for PostgresWriteProcessor {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let warehouse = self.warehouse(&event).await?;
            let rows = apply_event(warehouse, "postgres_write", &event, self.change).await?;
            tracing::debug!(flow = self.flow, task = self.task, event = event.id, rows, "wrote batch to PostgreSQL");
            out.emit(event).await
        })
    }
}
