//! A writer flow fed as its bus subscriber would feed it: the flow loaded from its YAML, its graph
//! built over an in-memory ledger, each event sent with its own completion token, and every
//! event's outcome collected once the graph drained. For tests that watch outcomes per batch.
//! Included with `#[path = "support/flow_feed.rs"] mod flow_feed;`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bulkflow_engine::bus::registry::BusRegistry;
use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::event::Event;
use bulkflow_engine::flow::{Flow, LoadContext, load_str};
use bulkflow_engine::run::Ledger;
use bulkflow_engine::runtime::build::{BuildContext, EnvLookup, build_graph};
use bulkflow_engine::runtime::graph::Graph;
use bulkflow_engine::runtime::processor::Envelope;
use bulkflow_engine::runtime::token::{Outcome, Token};
use bulkflow_engine::salesforce::ClientSettings;
use bulkflow_engine::salesforce::Clients;
use bulkflow_engine::schedule::SystemClock;
use bulkflow_engine::store::MemoryStore;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads flow `yaml` (named `file` in errors) against the repository's resources.
pub fn load_flow(file: &str, yaml: &str, credentials: &CredentialsRoot, env: &EnvLookup) -> Flow {
    let resources = repo().join("resources");
    let lookup = |name: &str| env(name);
    let ctx = LoadContext { resources_dir: &resources, credentials, env: &lookup };
    let (flow, diagnostics) = load_str(Path::new(file), yaml, &ctx);
    flow.unwrap_or_else(|| panic!("{diagnostics:?}"))
}

/// A build context over an in-memory ledger, with `config`'s resources the repository's.
pub fn build_context(credentials: CredentialsRoot, env: EnvLookup, config: EngineConfig) -> BuildContext {
    let clock = Arc::new(SystemClock);
    BuildContext {
        ledger: Arc::new(Ledger::new(Arc::new(MemoryStore::new()), clock.clone())),
        clock,
        config: EngineConfig { resources_dir: repo().join("resources"), ..config },
        buses: Arc::new(BusRegistry::new(None, credentials.clone())),
        injector: Arc::default(),
        salesforce: Arc::new(Clients::new(credentials.clone(), "63.0", ClientSettings::default())),
        credentials,
        env,
    }
}

/// Sends each event into `graph` with its own token; every event's outcome, in completion order,
/// once the graph drained.
pub async fn feed(graph: Graph, events: Vec<Event>) -> Vec<(String, Outcome)> {
    let mut running = graph.spawn();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    for event in events {
        let (o, id) = (outcomes.clone(), event.id.clone());
        let token = Token::new(move |outcome| o.lock().unwrap().push((id, outcome)));
        for input in &running.inputs {
            input.send(Envelope { event: event.clone(), token: token.fork() }).await.unwrap();
        }
        token.complete();
    }
    running.inputs.clear();
    while running.workers.join_next().await.is_some() {}
    outcomes.lock().unwrap().clone()
}

/// Loads flow `yaml`, builds its graph and [`feed`]s it `events`.
pub async fn run_flow(
    file: &str,
    yaml: &str,
    credentials_root: &Path,
    env: EnvLookup,
    events: Vec<Event>,
) -> Vec<(String, Outcome)> {
    let credentials = CredentialsRoot::new(Some(credentials_root.to_path_buf()));
    let flow = load_flow(file, yaml, &credentials, &env);
    let build = build_context(credentials, env, EngineConfig::default());
    feed(build_graph(&flow, &build).unwrap(), events).await
}
