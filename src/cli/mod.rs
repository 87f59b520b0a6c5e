//! Command-line definitions. Engine settings are flags of every engine command (before or after
//! a nested subcommand), and each has an environment variable.

pub mod debug;
pub mod demo;
pub mod export;
pub mod flows;
pub mod logging;
pub mod run;
pub mod runs;
pub mod runs_api;
pub mod runs_args;
pub mod runs_output;
pub mod state;
pub mod tui;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use bulkflow_engine::config::{ConfigLayer, EngineConfig, ForeignJobs};
use bulkflow_engine::flow::duration::HumanDuration;
use bulkflow_engine::flow::size::HumanBytes;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "bulkflow", version, about = "Durable, incremental Salesforce Bulk API exports")]
pub struct Cli {
    /// Log format on stderr; the level comes from RUST_LOG (default: info).
    #[arg(long, global = true, env = "BULKFLOW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check flow files (and the resources and credentials they name) without running anything.
    Validate(validate::ValidateArgs),
    /// Run every flow until SIGINT or SIGTERM.
    Run(run::RunArgs),
    /// Inspect the run ledger.
    Runs(runs::RunsArgs),
    /// Flows and their watermarks.
    Flows(flows::FlowsArgs),
    /// Everything at once, on embedded defaults: a simulated org, the seed's flows and more,
    /// Parquet in a local lake and a private PostgreSQL warehouse.
    Demo(demo::DemoArgs),
    /// One query job's results into Parquet, CSV or Arrow files in a folder or a bucket; run it
    /// again after an interruption to resume.
    Export(export::ExportArgs),
    /// The terminal UI: every run and flow of a running engine, live; retry and cancel.
    Tui(tui::TuiArgs),
    /// The Salesforce simulator.
    #[command(subcommand)]
    Sim(bulkflow_sim::cli::SimCommand),
    /// Inside the build: fault points.
    #[command(subcommand)]
    Debug(debug::DebugCommand),
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The engine's settings, on every engine command (not on `sim`, which has its own `--state`).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Engine config file [default: ./bulkflow.yaml when it exists].
    #[arg(long, global = true, env = "BULKFLOW_CONFIG")]
    pub config: Option<PathBuf>,
    /// The state store's directory.
    #[arg(global = true, long = "state-dir", visible_alias = "state", env = "BULKFLOW_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The folder of flow files (read recursively).
    #[arg(global = true, long = "workflows-dir", visible_alias = "workflows", env = "BULKFLOW_WORKFLOWS_DIR")]
    pub workflows_dir: Option<PathBuf>,
    /// The folder `resource:` paths are read from.
    #[arg(global = true, long = "resources-dir", visible_alias = "resources", env = "BULKFLOW_RESOURCES_DIR")]
    pub resources_dir: Option<PathBuf>,
    /// Read every absolute `credentials_path` P from DIR/P.
    #[arg(long, global = true, env = "BULKFLOW_CREDENTIALS_ROOT", value_name = "DIR")]
    pub credentials_root: Option<PathBuf>,
    /// Default Salesforce API version.
    #[arg(long, global = true, env = "BULKFLOW_API_VERSION")]
    pub api_version: Option<String>,
    /// How long finished runs are kept (e.g. 30d).
    #[arg(long, global = true, env = "BULKFLOW_RETENTION", value_parser = HumanDuration::parse)]
    pub retention: Option<HumanDuration>,
    /// Also serve the control API on this TCP address (it is always on `STATE/control.sock`); an
    /// address other than loopback needs a token.
    #[arg(long, global = true, env = "BULKFLOW_CONTROL_LISTEN")]
    pub control_listen: Option<SocketAddr>,
    /// A file holding the control API's bearer token (or set BULKFLOW_CONTROL_TOKEN).
    #[arg(long, global = true, env = "BULKFLOW_CONTROL_TOKEN_FILE", value_name = "FILE")]
    pub control_token_file: Option<PathBuf>,
    /// Address of the metrics and health endpoint.
    #[arg(long, global = true, env = "BULKFLOW_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// NATS for the engine's own leases and KV (not the flows' bus).
    #[arg(long, global = true, env = "BULKFLOW_NATS_URL")]
    pub nats_url: Option<String>,
    /// Completion events of jobs bulkflow did not create: skip (default) or include.
    #[arg(long, global = true, env = "BULKFLOW_FOREIGN_JOBS")]
    pub foreign_jobs: Option<ForeignJobs>,
    /// Poll a run's job when the run has been quiet this long (no completion event, no
    /// progress), e.g. 2m.
    #[arg(long, global = true, env = "BULKFLOW_JOB_POLL_AFTER", value_parser = HumanDuration::parse)]
    pub job_poll_after: Option<HumanDuration>,
    /// Deadline of a whole Salesforce call other than a results page, e.g. 2m.
    #[arg(long, global = true, env = "BULKFLOW_SALESFORCE_REQUEST_TIMEOUT", value_parser = HumanDuration::parse)]
    pub salesforce_request_timeout: Option<HumanDuration>,
    /// Deadline of a whole results page, request to last byte, e.g. 30m.
    #[arg(long, global = true, env = "BULKFLOW_SALESFORCE_PAGE_TIMEOUT", value_parser = HumanDuration::parse)]
    pub salesforce_page_timeout: Option<HumanDuration>,
    /// Largest results page read (inflated), e.g. 4GiB.
    #[arg(long, global = true, env = "BULKFLOW_SALESFORCE_MAX_PAGE_SIZE", value_parser = HumanBytes::parse)]
    pub salesforce_max_page_size: Option<HumanBytes>,
    /// Largest JSON answer read (a job, a page of the job list, a describe), e.g. 64MiB.
    #[arg(long, global = true, env = "BULKFLOW_SALESFORCE_MAX_ANSWER_SIZE", value_parser = HumanBytes::parse)]
    pub salesforce_max_answer_size: Option<HumanBytes>,
    /// Bytes of an error answer read for its message, e.g. 64KiB.
    #[arg(long, global = true, env = "BULKFLOW_SALESFORCE_MAX_ERROR_BODY", value_parser = HumanBytes::parse)]
    pub salesforce_max_error_body: Option<HumanBytes>,
    /// Pages of the job list followed before giving up (1,000 jobs a page).
    #[arg(long, global = true, env = "BULKFLOW_SALESFORCE_MAX_JOB_LIST_PAGES")]
    pub salesforce_max_job_list_pages: Option<u32>,
    /// How long a Pub/Sub stream asked for events may stay silent (no event, no keepalive)
    /// before it is subscribed again, e.g. 10m.
    #[arg(long, global = true, env = "BULKFLOW_SALESFORCE_STREAM_SILENCE_TIMEOUT", value_parser = HumanDuration::parse)]
    pub salesforce_stream_silence_timeout: Option<HumanDuration>,
    /// CA certificates (a PEM file) trusted besides the system's by every outbound TLS
    /// connection: Salesforce, Google, NATS, PostgreSQL (a TLS-inspecting proxy, a private CA).
    #[arg(long, global = true, env = "BULKFLOW_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
}

/// The flows of the configured workflows folder, read with the process environment.
pub fn load_flows(config: &EngineConfig) -> anyhow::Result<bulkflow_engine::flow::Loaded> {
    Ok(bulkflow_engine::node::operator::load_flows(config)?)
}

impl GlobalArgs {
    /// Flags and environment over the config file over defaults.
    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let flags = ConfigLayer {
            state_dir: self.state_dir.clone(),
            workflows_dir: self.workflows_dir.clone(),
            resources_dir: self.resources_dir.clone(),
            credentials_root: self.credentials_root.clone(),
            api_version: self.api_version.clone(),
            retention: self.retention,
            control_listen: self.control_listen,
            control_token_file: self.control_token_file.clone(),
            metrics_listen: self.metrics_listen,
            nats_url: self.nats_url.clone(),
            foreign_jobs: self.foreign_jobs,
            job_poll_after: self.job_poll_after,
            salesforce_request_timeout: self.salesforce_request_timeout,
            salesforce_page_timeout: self.salesforce_page_timeout,
            salesforce_max_page_size: self.salesforce_max_page_size,
            salesforce_max_answer_size: self.salesforce_max_answer_size,
            salesforce_max_error_body: self.salesforce_max_error_body,
            salesforce_max_job_list_pages: self.salesforce_max_job_list_pages,
            salesforce_stream_silence_timeout: self.salesforce_stream_silence_timeout,
            tls_ca_file: self.tls_ca_file.clone(),
        };
        let file = match &self.config {
            Some(path) => ConfigLayer::from_file(path)?,
            None if std::path::Path::new("bulkflow.yaml").exists() => ConfigLayer::from_file("bulkflow.yaml".as_ref())?,
            None => ConfigLayer::default(),
        };
        EngineConfig::resolve(&[&flags, &file]).context("invalid configuration")
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks (duplicate flags across global and subcommand arguments...).
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
