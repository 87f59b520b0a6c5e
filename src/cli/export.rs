//! `bulkflow export`: one query job's results into files, resumable. Exit 0 when done, 2 when the
//! command line is wrong (the flag or the SOQL named), 1 for anything else. The last line on
//! stdout is `rows=N files=F seconds=S`, for scripts.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::export::{self, ExportError, ExportRequest, Progress, QuerySpec};
use bulkflow_engine::file_format::FileFormat;
use bulkflow_engine::salesforce::credentials::SalesforceCredentials;
use bulkflow_engine::schema::TableSchema;
use bulkflow_engine::tls::Trust;
use clap::{ArgGroup, Args, ValueEnum};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["query", "object"])))]
pub struct ExportArgs {
    /// The Salesforce credentials file (the flows' `credentials_path` format).
    #[arg(long, value_name = "FILE")]
    pub credentials: PathBuf,
    /// The SOQL query to run.
    #[arg(long, value_name = "SOQL")]
    pub query: Option<String>,
    /// The object to export; with --fields, --where.
    #[arg(long, value_name = "NAME")]
    pub object: Option<String>,
    /// Fields of --object [default: every field its describe lists that the Bulk API can select].
    #[arg(long, value_name = "A,B,..", value_delimiter = ',', requires = "object")]
    pub fields: Vec<String>,
    /// A SOQL condition on --object.
    #[arg(long = "where", value_name = "EXPR", requires = "object")]
    pub filter: Option<String>,
    /// A folder, or an s3://, gs:// or az:// URL (credentials from the cloud's environment variables).
    #[arg(long, value_name = "DIR|URL")]
    pub out: String,
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    pub format: Format,
    /// A table schema (JSON, as `convert` reads) to cast the text columns to.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Only records changed since then (2026-12-01T10:00:00Z or 2026-12-01), on --since-field.
    #[arg(long, value_name = "TIMESTAMP")]
    pub since: Option<String>,
    /// The field --since filters on.
    #[arg(long, value_name = "FIELD", default_value = export::query::DEFAULT_SINCE_FIELD)]
    pub since_field: String,
    /// Include deleted and archived records (a queryAll job).
    #[arg(long)]
    pub query_all: bool,
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_rows_per_file: u64,
    /// Salesforce API version [default: the credentials file's, else 63.0].
    #[arg(long, value_name = "V")]
    pub api_version: Option<String>,
    /// Start over: remove an earlier export's files and checkpoint from --out.
    #[arg(long)]
    pub force: bool,
    /// CA certificates (PEM) trusted besides the system's when calling Salesforce: a proxy that
    /// re-signs TLS, a private CA.
    #[arg(long, value_name = "FILE", env = "BULKFLOW_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Read and parse the results but write nothing (measures the download alone).
    #[arg(long, hide = true)]
    pub discard: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
    Arrow,
}

impl From<Format> for FileFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Parquet => FileFormat::Parquet,
            Format::Csv => FileFormat::Csv,
            Format::Arrow => FileFormat::Arrow,
        }
    }
}

fn request(args: ExportArgs) -> Result<ExportRequest, ExportError> {
    let credentials = SalesforceCredentials::load(&args.credentials, &CredentialsRoot::default())
        .map_err(|e| ExportError::input("--credentials", e.to_string()))?;
    let schema = args
        .schema
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ExportError::input("--schema", format!("{}: {e}", path.display())))?;
            TableSchema::from_json(&text)
                .map_err(|e| ExportError::input("--schema", format!("{}: {e}", path.display())))
        })
        .transpose()?;
    let since = args.since.as_deref().map(export::query::parse_since).transpose()?;
    let trust =
        Trust::load(args.tls_ca_file.as_deref()).map_err(|e| ExportError::input("--tls-ca-file", e.to_string()))?;
    Ok(ExportRequest {
        credentials,
        api_version: args.api_version,
        query: QuerySpec {
            query: args.query,
            object: args.object,
            fields: args.fields.into_iter().map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect(),
            filter: args.filter,
            since,
            since_field: args.since_field,
        },
        query_all: args.query_all,
        out: args.out,
        format: args.format.into(),
        schema,
        max_rows_per_file: args.max_rows_per_file,
        force: args.force,
        discard: args.discard,
        trust,
    })
}

pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let request = match request(args) {
        Ok(r) => r,
        Err(e) => return Ok(fail(&e)),
    };
    let progress = Arc::new(Progress::default());
    let display = tokio::spawn(show(progress.clone()));
    let outcome = tokio::select! {
        outcome = export::export(request, progress.clone()) => outcome,
        _ = tokio::signal::ctrl_c() => Err(ExportError::Interrupted),
    };
    display.abort();
    let _ = display.await;
    match outcome {
        Ok(summary) => {
            println!("rows={} files={} seconds={:.2}", summary.rows, summary.files, started.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Err(ExportError::Interrupted) => {
            eprintln!("bulkflow export: {}", ExportError::Interrupted);
            // Files being written are left under hidden names (or as incomplete uploads), which
            // the next invocation clears; the blocking writer is not waited for.
            std::process::exit(1);
        }
        Err(e) => Ok(fail(&e)),
    }
}

fn fail(e: &ExportError) -> ExitCode {
    eprintln!("bulkflow export: {e}");
    ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
}

/// A progress bar on a terminal; a log line every 10 seconds otherwise.
async fn show(progress: Arc<Progress>) {
    let started = Instant::now();
    let mb = |p: &Progress| p.bytes.load(Ordering::Relaxed) as f64 / 1e6;
    if !std::io::stderr().is_terminal() {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tick.tick().await;
            if progress.downloading.load(Ordering::Relaxed) {
                let rows = progress.rows.load(Ordering::Relaxed);
                tracing::info!(
                    rows,
                    of = progress.total.load(Ordering::Relaxed),
                    mb = format!("{:.1}", mb(&progress)),
                    rows_per_s = (rows as f64 / started.elapsed().as_secs_f64()) as u64,
                    "exporting"
                );
            }
        }
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message("waiting for the query job");
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {human_pos}/{human_len} rows, {msg}, ETA {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let mut styled = false;
    // Rows of an earlier invocation and when reading began, for the rate.
    let (mut resumed, mut since) = (0, Instant::now());
    loop {
        if progress.downloading.load(Ordering::Relaxed) {
            if !styled {
                resumed = progress.rows.load(Ordering::Relaxed);
                since = Instant::now();
                bar.set_style(style.clone());
                bar.set_length(progress.total.load(Ordering::Relaxed));
                bar.reset_eta();
                styled = true;
            }
            let rows = progress.rows.load(Ordering::Relaxed);
            bar.set_position(rows);
            let rate = rows.saturating_sub(resumed) as f64 / since.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{:.1} MB, {:.0} rows/s", mb(&progress), rate));
        }
        bar.tick();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
