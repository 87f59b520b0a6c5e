//! `bulkflow demo`: the whole product on one machine with nothing to set up. A simulated
//! Salesforce org (with its BigQuery fake) runs in-process with records that keep changing; the
//! seed's three flows run unchanged beside the flows for Contact and Opportunity, on the embedded
//! bus (unless `NATS_URL` is set), writing Parquet under `DIR/lake/` and upserting into a private
//! PostgreSQL the demo starts itself when its server binaries are installed.
//!
//! Everything lives in DIR, so running the demo again resumes: the engine's state, the org
//! (`DIR/sim/`), the lake, and the warehouse's data directory.

mod assets;
mod progress;
mod warehouse;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::flow::{Flow, LoadContext, TaskKind, load_dir};
use bulkflow_engine::node::Node;
use bulkflow_engine::run::{Ledger, RunFilter};
use bulkflow_engine::runtime::build::{BuildContext, EnvLookup};
use bulkflow_engine::tasks::generate::source::open_on_demand;
use bulkflow_sim::SimConfig;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use progress::ObjectProgress;
use warehouse::Warehouse;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Records per object (Account, Contact, Opportunity) in the simulated org.
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Where the demo keeps everything: state, the org, the lake, the warehouse.
    #[arg(long, default_value = "./bulkflow-demo")]
    pub dir: PathBuf,
    /// Exit 0 once every object's first export is written and no run is in flight, leaving the
    /// warehouse running for inspection (`--stop` stops it).
    #[arg(long)]
    pub until_idle: bool,
    /// Stop the warehouse a previous `--until-idle` left running, and exit.
    #[arg(long)]
    pub stop: bool,
    /// Show the terminal UI instead of the progress lines; quitting it stops the demo.
    #[arg(long)]
    pub tui: bool,
}

/// Objects exported, each by `salesforce_bulkapi_query_<object>`.
const OBJECTS: [&str; 3] = ["Account", "Contact", "Opportunity"];
/// Modifications and inserts per second in the org, so each incremental run finds changes.
const CHANGE_RATE: f64 = 2.0;
/// Deletes per second in the simulated org (about five a minute): the demo's flows follow them.
const DELETE_RATE: f64 = 0.08;
const GCP_PROJECT: &str = "bulkflow-demo";
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const LEASE_TTL: Duration = Duration::from_secs(15);

/// Where things live in the demo directory.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }
    pub fn state(&self) -> PathBuf {
        self.path("state")
    }
    pub fn sim(&self) -> PathBuf {
        self.path("sim")
    }
    pub fn lake(&self) -> PathBuf {
        self.path("lake")
    }
    pub fn credentials(&self) -> PathBuf {
        self.path("credentials")
    }
    pub fn warehouse_data(&self) -> PathBuf {
        self.path("warehouse")
    }
    pub fn warehouse_url(&self) -> PathBuf {
        self.path("warehouse.url")
    }
    pub fn log(&self) -> PathBuf {
        self.path("bulkflow.log")
    }
}

/// The demo's log file, so `main` can send logs there before the demo starts.
pub fn log_file(args: &DemoArgs) -> PathBuf {
    Layout { dir: args.dir.clone() }.log()
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = std::path::absolute(&args.dir)?;
    let layout = Layout { dir };
    if args.stop {
        return warehouse::stop(&layout).map(|()| ExitCode::SUCCESS);
    }
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    println!("bulkflow demo in {} (logs: {})", layout.dir.display(), layout.log().display());
    assets::write(&layout.dir).context("cannot write the demo's flows")?;

    let mut sim = SimConfig::new()
        .records(OBJECTS.iter().map(|o| (*o, args.records)))
        .state_dir(layout.sim())
        .change_rate(CHANGE_RATE)
        .delete_rate(DELETE_RATE);
    // The seed's writer flows upsert into BigQuery: the simulator's fake holds one table per object.
    for object in OBJECTS {
        let lower = object.to_lowercase();
        let schema = assets::schema(&lower).with_context(|| format!("no schema for {object}"))?;
        sim = sim.bigquery_table(format!("{GCP_PROJECT}.salesforce.{lower}"), schema);
    }
    let sim = sim.start().await.context("cannot start the Salesforce simulator")?;
    sim.credentials()
        .write_to(&layout.credentials().join("etc/sfdc/credentials.json"))
        .context("cannot write the simulator's credentials")?;
    write_gcp_credentials(&layout)?;
    println!("salesforce   simulated org at {} ({} records per object)", sim.url(), args.records);
    println!("bigquery     the simulator's fake at {} (project {GCP_PROJECT})", sim.bigquery().addr());

    let warehouse = warehouse::start(&layout).await;
    match &warehouse {
        Warehouse::On { url } => {
            println!("warehouse    PostgreSQL at {url} (also in {})", layout.warehouse_url().display())
        }
        Warehouse::Off { why } => println!("warehouse    off: {why}"),
    }
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("GCS_BUCKET_PATH".into(), layout.lake().display().to_string());
    env.insert("GCP_PROJECT_ID".into(), GCP_PROJECT.into());
    env.insert("BIGQUERY_EMULATOR_HOST".into(), sim.bigquery().addr().to_string());
    if let Warehouse::On { url } = &warehouse {
        env.insert("WAREHOUSE_URL".into(), url.clone());
    }
    let bus = std::env::var("NATS_URL").ok().filter(|u| !u.is_empty());
    println!("bus          {}", bus.as_deref().unwrap_or("embedded (set NATS_URL to use a NATS server)"));
    let env: EnvLookup = Arc::new(move |name: &str| env.get(name).cloned().or_else(|| std::env::var(name).ok()));

    let config = EngineConfig {
        state_dir: layout.state(),
        workflows_dir: layout.path("workflows"),
        resources_dir: layout.path("resources"),
        credentials_root: Some(layout.credentials()),
        ..EngineConfig::default()
    };
    let flows = load_flows(&config, &env, matches!(warehouse, Warehouse::On { .. }))?;
    let ledger = Arc::new(super::state::open(&config.state_dir)?);
    let objects: Vec<String> = flows.iter().filter(|f| is_query_flow(f)).map(|f| f.name.clone()).collect();
    start_first_exports(&ledger, &objects)?;

    let build = BuildContext::new(config.clone(), ledger.clone(), env);
    let mut node = Node::start(&flows, build, LEASE_TTL, SHUTDOWN_GRACE).await?;
    let control = crate::control::Control::start(&config, ledger.clone(), &flows, node.leading(), node.waits()).await?;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut last_lines = Vec::new();
    let ui = async {
        if !args.tui {
            return std::future::pending().await;
        }
        let socket = crate::control::socket_path(&config.state_dir);
        let token = super::runs_api::client_token(&config)?;
        bulkflow_tui::run(bulkflow_control_proto::client::Address::Unix(socket), token, false).await?;
        anyhow::Ok(())
    };
    tokio::pin!(ui);
    let outcome = loop {
        tokio::select! {
            _ = &mut ui => break Outcome::Interrupted,
            _ = sigint.recv() => break Outcome::Interrupted,
            _ = sigterm.recv() => break Outcome::Interrupted,
            ended = node.wait() => break Outcome::EngineStopped(format!("{ended:?}")),
            _ = every.tick() => {}
        }
        let progress: Vec<ObjectProgress> =
            objects.iter().map(|f| ObjectProgress::read(&ledger, f)).collect::<anyhow::Result<_>>()?;
        let lines: Vec<String> = progress.iter().map(ObjectProgress::line).collect();
        if lines != last_lines && !args.tui {
            for l in &lines {
                println!("  {l}");
            }
            last_lines = lines;
        }
        if args.until_idle {
            if let Some(failed) = progress.iter().flat_map(|p| &p.failed).next() {
                break Outcome::Failed(format!("{} failed: {}", failed.id(), failed.last_error().unwrap_or("?")));
            }
            if progress::idle(&progress) {
                break Outcome::Idle;
            }
        }
    };
    control.stop().await;
    node.stop(SHUTDOWN_GRACE).await;
    if let Err(e) = sim.shutdown().await {
        tracing::warn!(error = %e, "the simulator did not stop cleanly");
    }
    summary(&layout, &ledger, &warehouse)?;
    match outcome {
        Outcome::Idle => {
            if let Warehouse::On { .. } = warehouse {
                println!(
                    "The warehouse is still running; `bulkflow demo --dir {} --stop` stops it.",
                    args.dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted => {
            warehouse::stop(&layout)?;
            println!("stopped; run the demo again with the same --dir to resume");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Failed(why) | Outcome::EngineStopped(why) => {
            eprintln!("demo stopped: {why} (see {})", layout.log().display());
            Ok(ExitCode::from(1))
        }
    }
}

enum Outcome {
    Idle,
    Interrupted,
    Failed(String),
    EngineStopped(String),
}

fn is_query_flow(flow: &Flow) -> bool {
    matches!(flow.tasks.first().map(|t| &t.kind), Some(TaskKind::Generate { .. }))
}

/// The demo's flows, read with its environment; the PostgreSQL writers only with a warehouse.
fn load_flows(config: &EngineConfig, env: &EnvLookup, warehouse: bool) -> anyhow::Result<Vec<Flow>> {
    let credentials = CredentialsRoot::new(config.credentials_root.clone());
    let lookup = |name: &str| env(name);
    let ctx = LoadContext { resources_dir: &config.resources_dir, credentials: &credentials, env: &lookup };
    let loaded = load_dir(&config.workflows_dir, &ctx)?;
    if loaded.has_errors() {
        for d in &loaded.diagnostics {
            eprintln!("{d}");
        }
        anyhow::bail!("the demo's flows have errors");
    }
    let postgres = config.workflows_dir.join(assets::POSTGRES_FLOWS.trim_start_matches("workflows/"));
    Ok(loaded.flows.into_iter().filter(|f| warehouse || !f.file.starts_with(&postgres)).collect())
}

/// On a fresh directory each object's first export starts now rather than at the next cron tick.
fn start_first_exports(ledger: &Ledger, flows: &[String]) -> anyhow::Result<()> {
    for flow in flows {
        if ledger.list_runs(&RunFilter { flow: Some(flow.clone()), state: None })?.is_empty() {
            open_on_demand(ledger, flow, chrono::Utc::now(), None)?;
        }
    }
    Ok(())
}

/// The seed's writer flows name a GCP service account; with the BigQuery fake (an emulator, as
/// Google's client libraries call it) it is never used to sign in, but the file must be there.
fn write_gcp_credentials(layout: &Layout) -> anyhow::Result<()> {
    let path = layout.credentials().join("etc/gcp/credentials.json");
    std::fs::create_dir_all(path.parent().unwrap_or(&layout.dir))?;
    let account = serde_json::json!({
        "type": "service_account",
        "project_id": GCP_PROJECT,
        "client_email": format!("demo@{GCP_PROJECT}.iam.gserviceaccount.com"),
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&account)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What was exported where, and how to look at it.
fn summary(layout: &Layout, ledger: &Ledger, warehouse: &Warehouse) -> anyhow::Result<()> {
    let runs = ledger.list_runs(&RunFilter::default())?;
    let written = runs.iter().filter(|r| r.state() == bulkflow_engine::run::RunState::Written).count();
    println!();
    println!(
        "runs         {} in the ledger, {written} written (`bulkflow runs list --state {}`)",
        runs.len(),
        layout.state().display()
    );
    println!("lake         {} (Parquet, EventDate=YYYY-MM-DD partitions)", layout.lake().display());
    let files = count_files(&layout.lake(), "parquet");
    println!(
        "             {files} Parquet files; e.g. duckdb -c \"select count(*) from '{}/salesforce/account/**/*.parquet'\"",
        layout.lake().display()
    );
    if let Warehouse::On { url } = warehouse {
        println!("warehouse    psql '{url}' -c 'select count(*) from salesforce.account'");
    }
    println!("bigquery     the fake's tables live as long as the demo runs (tabledata.list on its port)");
    Ok(())
}

fn count_files(dir: &Path, ext: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| e.path())
        .map(|p| if p.is_dir() { count_files(&p, ext) } else { usize::from(p.extension().is_some_and(|e| e == ext)) })
        .sum()
}
