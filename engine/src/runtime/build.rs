//! From a validated [`Flow`] to the parts the engine starts: the first task becomes the source,
//! the rest become worker nodes wired by `depends_on`.

use std::path::PathBuf;
use std::sync::Arc;

use super::engine::FlowParts;
use super::graph::{Graph, NodeSpec};
use super::processor::Processor;
use super::source::Source;
use crate::bus::registry::BusRegistry;
use crate::config::EngineConfig;
use crate::credentials::CredentialsRoot;
use crate::flow::{Flow, Task, TaskKind};
use crate::run::Ledger;
use crate::schedule::Clock;
use crate::tasks;

pub use crate::env::EnvLookup;

/// What tasks need from the engine.
#[derive(Clone)]
pub struct BuildContext {
    pub ledger: Arc<Ledger>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    pub credentials: CredentialsRoot,
    pub env: EnvLookup,
    /// The buses flows publish to and subscribe from: one embedded bus and one connection per
    /// NATS server, shared by every flow of the process.
    pub buses: Arc<BusRegistry>,
    /// One Salesforce client per credentials file, shared by every task naming it.
    pub salesforce: Arc<crate::salesforce::Clients>,
    /// Completion events the engine stands in for, taken by the flow listening for job events.
    pub injector: Arc<super::inject::Injector>,
}

impl BuildContext {
    /// The context of a real engine process: system clock, one bus registry over the state
    /// directory, one Salesforce client registry, credentials read from the configured root.
    pub fn new(config: EngineConfig, ledger: Arc<Ledger>, env: EnvLookup) -> Self {
        let credentials = CredentialsRoot::new(config.credentials_root.clone());
        Self {
            ledger,
            clock: Arc::new(crate::schedule::SystemClock),
            buses: Arc::new(
                BusRegistry::new(Some(config.state_dir.clone()), credentials.clone()).with_trust(config.trust.clone()),
            ),
            salesforce: Arc::new(crate::salesforce::Clients::new(
                credentials.clone(),
                &config.api_version,
                config.client_settings(),
            )),
            injector: Arc::default(),
            credentials,
            config,
            env,
        }
    }

    pub fn resources_dir(&self) -> &PathBuf {
        &self.config.resources_dir
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("flow `{flow}`, task `{task}`: the `{ty}` task cannot run yet in this version of bulkflow ({why})")]
    NotAvailable { flow: String, task: String, ty: &'static str, why: &'static str },
    #[error("flow `{flow}`, task `{task}`: {message}")]
    Invalid { flow: String, task: String, message: String },
    #[error("flow `{flow}` has no tasks")]
    Empty { flow: String },
}

pub fn build_flow(flow: &Flow, ctx: &BuildContext) -> Result<FlowParts, BuildError> {
    let first = flow.tasks.first().ok_or_else(|| BuildError::Empty { flow: flow.name.clone() })?;
    let source = source(flow, first, ctx)?;
    Ok(FlowParts {
        flow: flow.name.clone(),
        source_task: first.name.clone(),
        is_trigger: matches!(first.kind, TaskKind::Generate { .. }),
        source,
        graph: build_graph(flow, ctx)?,
    })
}

/// The flow's tasks after its source, wired by `depends_on`. Tests feed it directly to run a flow
/// whose source is not theirs to start.
pub fn build_graph(flow: &Flow, ctx: &BuildContext) -> Result<Graph, BuildError> {
    let (first, rest) = flow.tasks.split_first().ok_or_else(|| BuildError::Empty { flow: flow.name.clone() })?;
    let index = |name: &str| rest.iter().position(|t| t.name == name);
    let mut nodes = Vec::with_capacity(rest.len());
    for task in rest {
        nodes.push(NodeSpec {
            name: task.name.clone(),
            processor: processor(flow, task, ctx)?,
            retry: task.retry,
            children: flow.children(&task.name).filter_map(|c| index(&c.name)).collect(),
        });
    }
    let roots = flow.children(&first.name).filter_map(|c| index(&c.name)).collect();
    Ok(Graph { flow: flow.name.clone(), nodes, roots })
}

fn not_available(flow: &Flow, task: &Task, why: &'static str) -> BuildError {
    BuildError::NotAvailable { flow: flow.name.clone(), task: task.name.clone(), ty: task.kind.type_name(), why }
}

fn source(flow: &Flow, task: &Task, ctx: &BuildContext) -> Result<Box<dyn Source>, BuildError> {
    match &task.kind {
        TaskKind::Generate { trigger, .. } => Ok(Box::new(tasks::generate::source::GenerateSource {
            trigger: trigger.clone(),
            ledger: ctx.ledger.clone(),
            clock: ctx.clock.clone(),
        })),
        TaskKind::PubSubSubscriber(config) => {
            Ok(Box::new(tasks::salesforce_pubsubapi_subscriber::source::PubSubSource {
                flow: flow.name.clone(),
                task: task.name.clone(),
                config: config.clone(),
                clients: ctx.salesforce.clone(),
                ledger: ctx.ledger.clone(),
                foreign_jobs: ctx.config.foreign_jobs,
                injector: (config.topic.name == crate::node::poller::JOB_EVENT_TOPIC).then(|| ctx.injector.clone()),
            }))
        }
        TaskKind::NatsSubscriber(config) => {
            // Runs published on this subject are `written` only once this flow wrote them.
            ctx.ledger.register_consumer(&flow.name, &config.subject);
            Ok(Box::new(tasks::nats_jetstream_subscriber::source::NatsSubscriberSource {
                flow: flow.name.clone(),
                task: task.name.clone(),
                config: config.clone(),
                registry: ctx.buses.clone(),
                ledger: ctx.ledger.clone(),
                env: ctx.env.clone(),
            }))
        }
        _ => Err(not_available(flow, task, "it is not a source")),
    }
}

fn processor(flow: &Flow, task: &Task, ctx: &BuildContext) -> Result<Arc<dyn Processor>, BuildError> {
    match &task.kind {
        TaskKind::Script { script, .. } => Ok(Arc::new(tasks::script::processor::ScriptProcessor {
            flow: flow.name.clone(),
            task: task.name.clone(),
            script: script.clone(),
        })),
        TaskKind::BulkQueryJob { config, query } => {
            Ok(Arc::new(tasks::salesforce_bulkapi_query_job::processor::BulkQueryJobProcessor {
                task: task.name.clone(),
                config: config.clone(),
                query: query.clone(),
                clients: ctx.salesforce.clone(),
                ledger: ctx.ledger.clone(),
                env: ctx.env.clone(),
            }))
        }
        TaskKind::NatsPublisher(config) => Ok(Arc::new(
            tasks::nats_jetstream_publisher::processor::NatsPublisher::new(
                &flow.name,
                &task.name,
                config.clone(),
                ctx.buses.clone(),
                ctx.ledger.clone(),
                ctx.env.clone(),
            )
            .map_err(|e| BuildError::Invalid {
                flow: flow.name.clone(),
                task: task.name.clone(),
                message: e.to_string(),
            })?,
        )),
        TaskKind::Convert { config, schema } => Ok(Arc::new(tasks::convert::processor::ConvertProcessor::new(
            &flow.name,
            &task.name,
            config,
            schema.clone(),
        ))),
        TaskKind::ObjectStore(config) => Ok(Arc::new(tasks::object_store::processor::ObjectStoreProcessor::new(
            &flow.name,
            &task.name,
            config,
            config.credentials_path.as_deref().map(|p| ctx.credentials.resolve(std::path::Path::new(p))),
            ctx.env.clone(),
            ctx.config.trust.clone(),
        ))),
        TaskKind::PostgresWrite { config, schema } => {
            Ok(Arc::new(tasks::postgres_write::processor::PostgresWriteProcessor::new(
                &flow.name,
                &task.name,
                config,
                schema.clone(),
                config.credentials_path.as_deref().map(|p| ctx.credentials.resolve(std::path::Path::new(p))),
                ctx.env.clone(),
                ctx.config.trust.clone(),
            )))
        }
        TaskKind::BigQueryWrite(config) => {
            Ok(Arc::new(tasks::gcp_bigquery_storage_write::processor::BigQueryWriteProcessor::new(
                &flow.name,
                &task.name,
                config,
                config.credentials_path.as_deref().map(|p| ctx.credentials.resolve(std::path::Path::new(p))),
                ctx.env.clone(),
                ctx.config.trust.clone(),
            )))
        }
        TaskKind::Generate { .. } | TaskKind::PubSubSubscriber(_) | TaskKind::NatsSubscriber(_) => {
            Err(not_available(flow, task, "a source can only be a flow's first task"))
        }
    }
}
