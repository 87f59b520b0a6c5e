//! `bulkflow sim ...`: the simulator's command line, a thin layer over [`crate::Simulator`].

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::config::{DEFAULT_LIST_PAGE_SIZE, DEFAULT_MAX_PAGE_RECORDS, SimConfig};
use crate::faults::FaultConfig;
use crate::server::Simulator;

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve a simulated Salesforce org until stopped.
    Serve(Box<ServeArgs>),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for the REST API (OAuth, Bulk API 2.0, admin endpoint); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Address for the Pub/Sub API (gRPC over plain HTTP/2); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub pubsub_listen: SocketAddr,
    /// Pub/Sub: an empty keepalive FetchResponse after this long with credit but no events.
    #[arg(long, default_value = "270s", value_parser = humantime::parse_duration)]
    pub pubsub_keepalive: Duration,
    /// Pub/Sub: close a stream this long after its credit ran out with no new FetchRequest.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub pubsub_idle_close: Duration,
    /// Pub/Sub: how long events stay replayable (older replay ids are `replayid.corrupted`).
    #[arg(long, default_value = "72h", value_parser = humantime::parse_duration)]
    pub replay_retention: Duration,
    /// Pub/Sub: publish a RESULT/PARTIAL BulkApi2JobEvent per full results page before the FINAL.
    #[arg(long)]
    pub partial_result_events: bool,
    /// Address for the BigQuery fake (Storage Write gRPC and REST on one port); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bigquery_listen: SocketAddr,
    /// A BigQuery table to create at start, `project.dataset.table=schema.json` (repeatable).
    #[arg(long, value_parser = parse_bigquery_table)]
    pub bigquery_table: Vec<(String, String)>,
    /// Records per object, e.g. `Account=10000,Contact=5000,Opportunity=2000`.
    #[arg(long, default_value = "Account=10000", value_parser = parse_records)]
    pub records: RecordCounts,
    /// Seed of the data generator: the same seed (and --start) gives byte-identical results.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The data's LastModifiedDates lie in the --spread before this (RFC 3339). Default: now.
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    /// How far before --start the LastModifiedDates reach.
    #[arg(long, default_value = "23h", value_parser = humantime::parse_duration)]
    pub spread: Duration,
    /// Record modifications and inserts per second (each); 0 keeps the data still.
    #[arg(long, default_value_t = 0.0)]
    pub change_rate: f64,
    /// Record deletes per second (to the Recycle Bin: `queryAll` and the `deleted` resource see
    /// them); 0 deletes nothing.
    #[arg(long, default_value_t = 0.0)]
    pub delete_rate: f64,
    /// Time from job creation to JobComplete (InProgress for its second half), e.g. `1s`, `5m`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub job_latency: Duration,
    /// How long terminal jobs and their results stay available.
    #[arg(long, default_value = "7days", value_parser = humantime::parse_duration)]
    pub retention: Duration,
    /// How far back the `deleted` resource reports deletes (Salesforce: 15 days); a request
    /// starting earlier answers INVALID_REPLICATION_DATE.
    #[arg(long, default_value = "15days", value_parser = humantime::parse_duration)]
    pub deleted_window: Duration,
    /// Most rows in one results page (also the page size when a client sends no maxRecords).
    #[arg(long, default_value_t = DEFAULT_MAX_PAGE_RECORDS)]
    pub max_page_records: usize,
    /// Jobs per page of the job list.
    #[arg(long, default_value_t = DEFAULT_LIST_PAGE_SIZE)]
    pub list_page_size: usize,
    /// Persist the org (data, jobs, results, tokens, replay log) here; without it, memory only.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Write a credentials JSON pointing at this simulator (mode 0600), and the JWT key beside it.
    #[arg(long)]
    pub credentials_out: Option<PathBuf>,
    /// Fix the connected app's consumer key instead of a random one.
    #[arg(long, env = "BULKFLOW_SIM_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Fix the consumer secret instead of a random one.
    #[arg(long, env = "BULKFLOW_SIM_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Fix the username instead of a random one.
    #[arg(long, env = "BULKFLOW_SIM_USERNAME")]
    pub username: Option<String>,
    /// Fix the password instead of a random one.
    #[arg(long, env = "BULKFLOW_SIM_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Access tokens stop working this long after issue (401 INVALID_SESSION_ID).
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
    /// Fault: the next N REST requests answer 5xx.
    #[arg(long, default_value_t = 0)]
    pub fault_5xx: u32,
    /// Status code of those answers.
    #[arg(long, default_value_t = 503)]
    pub fault_5xx_status: u16,
    /// Fault: the next N REST requests answer 403 REQUEST_LIMIT_EXCEEDED.
    #[arg(long, default_value_t = 0)]
    pub fault_request_limit: u32,
    /// Fault: delay before every REST request, e.g. `200ms`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub fault_latency: Option<Duration>,
    /// Restrict --fault-5xx, --fault-request-limit and --fault-latency to these endpoints
    /// (oauth_token, job_create, job_list, job_get, job_abort, job_delete, job_results).
    #[arg(long, value_delimiter = ',')]
    pub fault_endpoints: Vec<String>,
    /// Fault: the next N results bodies are cut mid-body.
    #[arg(long, default_value_t = 0)]
    pub fault_cut_results: u32,
    /// Where those bodies are cut, in bytes.
    #[arg(long, default_value_t = 4096)]
    pub fault_cut_after_bytes: u64,
    /// Fault: the next N jobs end Failed.
    #[arg(long, default_value_t = 0)]
    pub fault_fail_jobs: u32,
    /// errorMessage of those jobs (absent when not given).
    #[arg(long)]
    pub fault_failed_message: Option<String>,
    /// Fault: error responses carry an HTML page instead of JSON.
    #[arg(long)]
    pub fault_non_json_errors: bool,
    /// Fault: the next N Pub/Sub subscriptions resuming from a replay id get `replayid.corrupted`.
    #[arg(long, default_value_t = 0)]
    pub fault_pubsub_corrupt_replay: u32,
    /// Serve HTTPS (and the Pub/Sub API over TLS) with this certificate chain (PEM); needs
    /// --tls-key. Clients trust it through their CA settings (bulkflow: --tls-ca-file).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RecordCounts(pub Vec<(String, usize)>);

fn parse_records(text: &str) -> Result<RecordCounts, String> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|pair| {
            let (object, count) = pair.split_once('=').ok_or_else(|| format!("expected OBJECT=N, got `{pair}`"))?;
            let count = count.trim().parse().map_err(|_| format!("`{count}` is not a record count"))?;
            Ok((object.trim().to_string(), count))
        })
        .collect::<Result<_, _>>()
        .map(RecordCounts)
}

/// `P.D.T=FILE` → the table's name and the schema file's text.
fn parse_bigquery_table(text: &str) -> Result<(String, String), String> {
    let (id, file) =
        text.split_once('=').ok_or_else(|| format!("`{text}`: write project.dataset.table=schema.json"))?;
    let schema = std::fs::read_to_string(file).map_err(|e| format!("`{file}`: {e}"))?;
    Ok((id.trim().to_string(), schema))
}

impl ServeArgs {
    pub fn to_config(&self) -> SimConfig {
        SimConfig {
            listen: self.listen,
            pubsub_listen: self.pubsub_listen,
            pubsub_keepalive: self.pubsub_keepalive,
            pubsub_idle_close: self.pubsub_idle_close,
            replay_retention: self.replay_retention,
            partial_result_events: self.partial_result_events,
            records: self.records.0.clone(),
            seed: self.seed,
            start: self.start,
            spread: self.spread,
            change_rate: self.change_rate,
            delete_rate: self.delete_rate,
            job_latency: self.job_latency,
            retention: self.retention,
            deleted_window: self.deleted_window,
            max_page_records: self.max_page_records,
            list_page_size: self.list_page_size,
            state_dir: self.state.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            jwt_private_key_pem: None,
            bigquery_listen: self.bigquery_listen,
            bigquery_tables: self.bigquery_table.clone(),
            tls: self.tls_cert.clone().zip(self.tls_key.clone()).map(|(cert, key)| crate::tls::TlsFiles { cert, key }),
            faults: FaultConfig {
                error_5xx: self.fault_5xx,
                error_5xx_status: self.fault_5xx_status,
                request_limit: self.fault_request_limit,
                latency_ms: self.fault_latency.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                endpoints: self.fault_endpoints.clone(),
                token_ttl_secs: crate::config::ttl_secs(self.token_ttl),
                cut_results: self.fault_cut_results,
                cut_after_bytes: self.fault_cut_after_bytes,
                fail_jobs: self.fault_fail_jobs,
                failed_job_message: self.fault_failed_message.clone(),
                non_json_errors: self.fault_non_json_errors,
                pubsub_corrupt_replay: self.fault_pubsub_corrupt_replay,
                ..FaultConfig::default()
            },
        }
    }
}

pub async fn run(command: SimCommand) -> anyhow::Result<()> {
    // Logs go to stderr: stdout carries only the `ready` line, which scripts wait for.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    match command {
        SimCommand::Serve(args) => {
            let stop = async {
                if let Err(e) = wait_for_stop().await {
                    tracing::error!(error = %e, "cannot wait for a stop signal; stopping");
                }
            };
            serve_until(*args, stop, &mut std::io::stdout()).await
        }
    }
}

/// Serves until `stop` completes. The `ready` line goes to `out` once the simulator listens (and
/// the credentials file, if asked for, is written), so whoever reads it can connect at once.
pub async fn serve_until(
    args: ServeArgs,
    stop: impl std::future::Future<Output = ()>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let sim = Simulator::start(args.to_config()).await.context("starting the simulator")?;
    if let Some(file) = &args.credentials_out {
        let written =
            sim.credentials().write_to(file).with_context(|| format!("writing credentials to {}", file.display()))?;
        tracing::info!(path = %file.display(), key = ?written.private_key_path, "credentials written");
    }
    writeln!(out, "ready url={} pubsub={} bigquery={}", sim.url(), sim.pubsub_addr(), sim.bigquery().addr())?;
    out.flush()?;
    tokio::select! {
        () = stop => {}
        result = sim.wait() => return result.context("serving"),
    }
    tracing::info!("stopping");
    Ok(())
}

/// Ctrl-C, or SIGTERM where there are signals.
async fn wait_for_stop() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_record_counts() {
        let r = parse_records("Account=10, Contact=5").unwrap();
        assert_eq!(r.0, vec![("Account".to_string(), 10), ("Contact".to_string(), 5)]);
        assert!(parse_records("Account").is_err());
        assert!(parse_records("Account=x").is_err());
    }

    /// The flags' literal defaults must say what the library's defaults are.
    #[test]
    fn flag_defaults_match_the_library() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            command: SimCommand,
        }
        let SimCommand::Serve(args) = Cli::parse_from(["x", "serve"]).command;
        let config = args.to_config();
        let defaults = SimConfig::default();
        assert_eq!(config.spread, defaults.spread);
        assert_eq!(config.job_latency, defaults.job_latency);
        assert_eq!(config.retention, defaults.retention);
        assert_eq!(config.deleted_window, defaults.deleted_window);
        assert_eq!(config.faults, defaults.faults);
        assert_eq!(config.records, defaults.records);
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(config.pubsub_listen, defaults.pubsub_listen);
        assert_eq!(config.pubsub_keepalive, defaults.pubsub_keepalive);
        assert_eq!(config.pubsub_idle_close, defaults.pubsub_idle_close);
        assert_eq!(config.replay_retention, defaults.replay_retention);
    }
}
