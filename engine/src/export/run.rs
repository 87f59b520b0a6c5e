//! One export from start to summary: the job (created, or found again from the checkpoint), its
//! result pages read and parsed on the async side while a blocking thread casts, encodes and
//! finishes files, and the checkpoint moved after each file.
//!
//! Two stages on two cores: while the encoder writes page k, page k+1 is parsed and page k+2's
//! response is on its way (the results reader asks for the next page as soon as a page's headers
//! name it). The channel between them holds [`PAGES_IN_FLIGHT`] pages, which bounds memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use chrono::Utc;
use tokio::sync::mpsc;

use super::checkpoint::{Checkpoint, Cursor, Identity};
use super::encoder::Encoder;
use super::error::ExportError;
use super::out::Out;
use super::query::QuerySpec;
use crate::file_format::FileFormat;
use crate::salesforce::ClientSettings;
use crate::salesforce::bulk::{self, CreateJob, JobInfo};
use crate::salesforce::credentials::SalesforceCredentials;
use crate::salesforce::job_create::{self, CreateGuard};
use crate::salesforce::options::{ColumnDelimiter, LineEnding, QueryOperation};
use crate::salesforce::results::{Page, ResultsReader};
use crate::salesforce::{SalesforceClient, SalesforceError, describe};
use crate::schema::TableSchema;
use crate::schema::cast::{Caster, ExtraColumns};

/// Rows per parsed batch.
const BATCH_ROWS: usize = 32 * 1024;
/// Parsed pages waiting for the encoder.
const PAGES_IN_FLIGHT: usize = 2;
/// API version when neither the flag nor the credentials file names one.
pub const DEFAULT_API_VERSION: &str = "63.0";

#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub credentials: SalesforceCredentials,
    pub api_version: Option<String>,
    pub query: QuerySpec,
    pub query_all: bool,
    pub out: String,
    pub format: FileFormat,
    pub schema: Option<TableSchema>,
    pub max_rows_per_file: u64,
    pub force: bool,
    /// Read and parse the results but write nothing (the download alone, for benchmarks).
    pub discard: bool,
    /// What TLS to Salesforce trusts.
    pub trust: crate::tls::Trust,
}

/// Counters a progress display reads while the export runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// The job's record count, once it is complete (0 before).
    pub total: AtomicU64,
    /// Rows read, counting those of an earlier invocation this one resumed after.
    pub rows: AtomicU64,
    /// Result bytes downloaded by this invocation (as sent, before inflating).
    pub bytes: AtomicU64,
    /// The job is complete and its results are being read.
    pub downloading: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Rows written to files by this invocation (read, with `discard`).
    pub rows: u64,
    pub files: u64,
}

pub async fn export(req: ExportRequest, progress: Arc<Progress>) -> Result<Summary, ExportError> {
    let mut credentials = req.credentials.clone();
    if let Some(v) = &req.api_version {
        credentials.api_version = Some(v.clone());
    }
    if req.max_rows_per_file == 0 {
        return Err(ExportError::input("--max-rows-per-file", "must be at least 1".into()));
    }
    let client = Arc::new(SalesforceClient::new(
        credentials,
        DEFAULT_API_VERSION,
        ClientSettings { trust: req.trust.clone(), ..ClientSettings::default() },
    )?);
    let out = if req.discard { None } else { Some(Out::open(&req.out)?) };
    let described = match req.query.needs_describe() {
        Some(object) => describe::bulk_fields(&client, object).await.map_err(|e| match e {
            e if e.is_not_found() => ExportError::input("--object", format!("Salesforce knows no object `{object}`")),
            e => e.into(),
        })?,
        None => Vec::new(),
    };
    let soql = req.query.soql(&described)?;
    let identity = Identity {
        soql: soql.clone(),
        query_all: req.query_all,
        format: req.format,
        max_rows_per_file: req.max_rows_per_file,
        schema: req.schema.clone(),
    };
    let mut cp = match &out {
        Some(out) => match out.read_checkpoint().await? {
            Some(_) if req.force => {
                out.clear().await?;
                Checkpoint::new(identity)
            }
            // Nothing was made for it (a refused query, say): nothing to keep.
            Some(cp) if cp.identity != identity && cp.job_id.is_none() && cp.files == 0 => Checkpoint::new(identity),
            Some(cp) if cp.identity != identity => {
                return Err(ExportError::input(
                    "--out",
                    format!(
                        "{} holds {} export of another query or format (`{}`); run it with the same flags, or add --force to start over",
                        out.location(),
                        if cp.done { "a finished" } else { "an unfinished" },
                        cp.identity.soql
                    ),
                ));
            }
            Some(cp) if cp.done => {
                tracing::info!(
                    out = out.location(),
                    files = cp.files,
                    rows = cp.rows,
                    "this export is already complete; nothing to do"
                );
                return Ok(Summary { rows: 0, files: 0 });
            }
            Some(cp) => {
                tracing::info!(
                    out = out.location(),
                    files = cp.files,
                    rows = cp.rows,
                    job = cp.job_id.as_deref().unwrap_or("-"),
                    "resuming an unfinished export"
                );
                cp
            }
            None => Checkpoint::new(identity),
        },
        None => Checkpoint::new(identity),
    };
    let (before_files, before_rows) = (cp.files, cp.rows);

    let job = job(&client, out.as_ref(), &mut cp).await?;
    let job = wait_complete(&client, job).await?;
    progress.total.store(job.records_processed.unwrap_or(0), Ordering::Relaxed);
    tracing::info!(job = job.id, records = job.records_processed, "the job is complete; reading its results");
    let reading = std::time::Instant::now();
    let finished = |rows: u64| {
        let seconds = reading.elapsed().as_secs_f64();
        tracing::info!(
            rows,
            read_seconds = format!("{seconds:.3}"),
            rows_per_s = (rows as f64 / seconds) as u64,
            "results read and written"
        );
    };

    let Some(out) = out else {
        let mut reader = ResultsReader::new(client, job, BATCH_ROWS, None, None);
        progress.downloading.store(true, Ordering::Relaxed);
        while reader.next_page().await?.is_some() {
            count(&progress, &reader);
        }
        finished(reader.rows());
        return Ok(Summary { rows: reader.rows(), files: 0 });
    };

    let resume = cp.cursor.locator.clone().map(|l| (cp.cursor.page, l, cp.rows - cp.cursor.skip));
    let mut reader = ResultsReader::new(client, job, BATCH_ROWS, None, resume);
    count(&progress, &reader);
    progress.downloading.store(true, Ordering::Relaxed);
    let caster = cp.identity.schema.clone().map(|s| Caster::new(s, ExtraColumns::Drop));
    let (tx, rx) = mpsc::channel::<Message>(PAGES_IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || write_files(&out, cp, caster.as_ref(), rx));
    let read: Result<(), ExportError> = async {
        while let Some(page) = reader.next_page().await? {
            count(&progress, &reader);
            if tx.send(Message::Page(page)).await.is_err() {
                return Ok(()); // the writer stopped; its error says why
            }
        }
        let _ = tx.send(Message::End).await;
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|e| ExportError::output("the file writer", e))?;
    let cp = match (read, written) {
        (Err(e), _) => return Err(e),
        (Ok(()), Err(e)) => return Err(e),
        (Ok(()), Ok(cp)) => cp,
    };
    finished(cp.rows - before_rows);
    Ok(Summary { rows: cp.rows - before_rows, files: cp.files - before_files })
}

/// The reader's own count (rows before a resume point included, so a page read again from its
/// start is not counted twice) and the bytes of the page it read last.
fn count(progress: &Progress, reader: &ResultsReader) {
    progress.rows.store(reader.rows(), Ordering::Relaxed);
    progress.bytes.fetch_add(reader.last_page_bytes(), Ordering::Relaxed);
}

/// The export's job: the one the checkpoint names, the one an unanswered POST made, or a new one.
async fn job(client: &SalesforceClient, out: Option<&Out>, cp: &mut Checkpoint) -> Result<JobInfo, ExportError> {
    let soql = cp.identity.soql.clone();
    let request = CreateJob {
        soql: &soql,
        operation: if cp.identity.query_all { QueryOperation::QueryAll } else { QueryOperation::Query },
        column_delimiter: ColumnDelimiter::Comma,
        line_ending: LineEnding::Lf,
    };
    if let Some(id) = &cp.job_id {
        return bulk::get_job(client, id).await.map_err(|e| match e {
            e if e.is_not_found() => ExportError::output(
                format!("job {id}"),
                "the job of this unfinished export is gone (Salesforce keeps results 7 days); add --force to start over",
            ),
            e => e.into(),
        });
    }
    let found = match cp.posted_at {
        Some(at) => job_create::find_own_job(client, at, &request, &|_| false).await?,
        None => None,
    };
    let job = match found {
        Some(job) => {
            tracing::info!(job = job.id, "found the job an interrupted invocation created");
            job
        }
        None => {
            let mut before_post = || -> Result<chrono::DateTime<Utc>, SalesforceError> {
                let now = Utc::now();
                cp.posted_at = Some(now);
                if let Some(out) = out {
                    out.write_checkpoint_now(cp).map_err(|e| SalesforceError::State(e.to_string()))?;
                }
                Ok(now)
            };
            let guard = CreateGuard { taken: &|_| false, before_post: &mut before_post };
            job_create::create_job(client, &request, guard).await.map_err(|e| ExportError::from_create(&soql, e))?
        }
    };
    tracing::info!(job = job.id, query = soql, "query job created");
    cp.job_id = Some(job.id.clone());
    if let Some(out) = out {
        out.write_checkpoint(cp).await?;
    }
    Ok(job)
}

/// Polls every [`EARLY_POLL`] for the first [`EARLY_PHASE`] (most jobs of a one-shot export are
/// done in seconds, and each poll is one cheap API call), then backs off to every 5 s.
async fn wait_complete(client: &SalesforceClient, mut job: JobInfo) -> Result<JobInfo, ExportError> {
    let started = std::time::Instant::now();
    let mut delay = EARLY_POLL;
    loop {
        if job.check_finished()? {
            return Ok(job);
        }
        tokio::time::sleep(delay).await;
        if started.elapsed() > EARLY_PHASE {
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        job = bulk::get_job(client, &job.id).await?;
    }
}

const EARLY_POLL: Duration = Duration::from_millis(200);
const EARLY_PHASE: Duration = Duration::from_secs(10);

enum Message {
    Page(Page),
    End,
}

/// The file being written and where in the results it started.
struct OpenFile {
    encoder: Encoder,
    name: String,
    rows: u64,
}

/// Writes pages to files of at most `max_rows_per_file` rows, moving the checkpoint after each
/// file. Runs on a blocking thread.
fn write_files(
    out: &Out,
    mut cp: Checkpoint,
    caster: Option<&Caster>,
    mut rx: mpsc::Receiver<Message>,
) -> Result<Checkpoint, ExportError> {
    let runtime = tokio::runtime::Handle::current();
    let max = cp.identity.max_rows_per_file;
    let mut skip = cp.cursor.skip;
    let mut open: Option<OpenFile> = None;
    let result = (|| loop {
        let page = match rx.blocking_recv() {
            Some(Message::Page(page)) => page,
            Some(Message::End) => {
                if let Some(file) = open.take() {
                    cp.rows += close(file)?;
                    cp.files += 1;
                }
                cp.done = true;
                runtime.block_on(out.write_checkpoint(&cp))?;
                return Ok(());
            }
            None => return Err(ExportError::Interrupted),
        };
        let mut offset = 0u64;
        for batch in &page.batches {
            let mut batch = cast(caster, batch, page.number)?;
            if skip > 0 {
                let s = usize::try_from(skip).unwrap_or(usize::MAX).min(batch.num_rows());
                batch = batch.slice(s, batch.num_rows() - s);
                skip -= s as u64;
                offset += s as u64;
            }
            while batch.num_rows() > 0 {
                let file = match &mut open {
                    Some(file) => file,
                    None => {
                        let name = cp.file_name(cp.files);
                        let sink = out.create(&name)?;
                        let encoder = Encoder::new(cp.identity.format, &batch.schema(), sink, &name)?;
                        open.insert(OpenFile { encoder, name, rows: 0 })
                    }
                };
                let take = (batch.num_rows() as u64).min(max - file.rows);
                let n = usize::try_from(take).unwrap_or(usize::MAX);
                file.encoder.write(&batch.slice(0, n), &file.name)?;
                file.rows += take;
                offset += take;
                batch = batch.slice(n, batch.num_rows() - n);
                if file.rows == max {
                    let file = open.take().expect("a file is open");
                    cp.rows += close(file)?;
                    cp.files += 1;
                    cp.cursor = if offset == page.rows && page.next.is_some() {
                        Cursor { page: page.number + 1, locator: page.next.clone(), skip: 0 }
                    } else {
                        Cursor { page: page.number, locator: page.locator.clone(), skip: offset }
                    };
                    runtime.block_on(out.write_checkpoint(&cp))?;
                }
            }
        }
    })();
    if result.is_err()
        && let Some(file) = open.take()
        && let Ok(sink) = file.encoder.close(&file.name)
    {
        sink.abort();
    }
    result.map(|()| cp)
}

/// Finishes a file; its rows count once it is complete.
fn close(file: OpenFile) -> Result<u64, ExportError> {
    file.encoder.close(&file.name)?.finish()?;
    Ok(file.rows)
}

fn cast(caster: Option<&Caster>, batch: &RecordBatch, page: u64) -> Result<RecordBatch, ExportError> {
    let Some(caster) = caster else { return Ok(batch.clone()) };
    let cast = caster.cast(batch).map_err(|e| ExportError::input("--schema", format!("results page {page}: {e}")))?;
    if let Some(first) = cast.errors.first() {
        return Err(ExportError::input(
            "--schema",
            format!("results page {page}: {first} ({} bad values in this batch)", cast.errors.len()),
        ));
    }
    Ok(cast.batch)
}
