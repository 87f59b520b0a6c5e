//! Results of a query job, page by page: each page is fetched by its locator, parsed as its body
//! arrives, and retried whole (by the same, stable locator) when anything goes wrong, so a cut in
//! page k refetches page k only. The next page is requested as soon as this page's headers name
//! it, while this page's body is still being parsed, and its body is read ahead (inflated, up to
//! [`READ_AHEAD_BYTES`]) by a task of its own: on two cores one inflates page k+1 while the other
//! parses page k. Bodies are asked for gzipped (the client sends `Accept-Encoding: gzip` and
//! inflates).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::bulk::JobInfo;
use super::client::SalesforceClient;
use super::csv_batches::PageParser;
use super::error::SalesforceError;
use super::settings::{Limits, bytes};
use crate::flow::duration::HumanDuration;

/// One page, parsed.
#[derive(Debug)]
pub struct Page {
    /// Page number, from 0.
    pub number: u64,
    /// The locator this page was fetched with (`None` for the first page).
    pub locator: Option<String>,
    /// The next page's locator; `None` when this was the last page.
    pub next: Option<String>,
    pub batches: Vec<RecordBatch>,
    pub rows: u64,
}

/// Reads a completed job's results. Memory holds one parsed page (at most `maxRecords` rows) plus
/// the next page's response headers.
pub struct ResultsReader {
    client: Arc<SalesforceClient>,
    job: JobInfo,
    batch_size: usize,
    max_records: Option<usize>,
    schema: Option<SchemaRef>,
    next_number: u64,
    next_locator: Option<Option<String>>,
    rows: u64,
    /// The request for the page after the one being read, and the locator it asked for.
    prefetched: Option<(String, tokio::task::JoinHandle<Result<Incoming, SalesforceError>>)>,
    /// Bytes of the page read last, for the page metrics.
    last_page_bytes: u64,
    /// Whether to request the next page while this one is read.
    prefetch: bool,
}

impl ResultsReader {
    /// Start at the first page, or at a checkpointed `(page number, locator)`.
    pub fn new(
        client: Arc<SalesforceClient>,
        job: JobInfo,
        batch_size: usize,
        max_records: Option<usize>,
        resume: Option<(u64, String, u64)>,
    ) -> Self {
        let (next_number, next_locator, rows) = match resume {
            Some((page, locator, rows)) => (page, Some(Some(locator)), rows),
            None => (0, Some(None), 0),
        };
        Self {
            client,
            job,
            batch_size,
            max_records,
            schema: None,
            next_number,
            next_locator,
            rows,
            prefetched: None,
            last_page_bytes: 0,
            prefetch: true,
        }
    }

    /// A reader for one page only: it does not request the page after it, which a reading
    /// resumed elsewhere would request again.
    pub fn one_page(mut self) -> Self {
        self.prefetch = false;
        self
    }

    pub fn job(&self) -> &JobInfo {
        &self.job
    }

    /// Rows read so far (including pages before a resume point).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of the page read last, as they came over the wire.
    pub fn last_page_bytes(&self) -> u64 {
        self.last_page_bytes
    }

    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Page>, SalesforceError> {
        let Some(locator) = self.next_locator.clone() else { return Ok(None) };
        let number = self.next_number;
        let policy = self.client.retry_policy();
        let mut attempt = 1;
        let started = std::time::Instant::now();
        let page = loop {
            // The prefetch made while reading the page before is this page's request. A retry
            // requests this page again and leaves the next page's prefetch alone: locators are
            // stable, so it is still good.
            let mine = match &self.prefetched {
                Some((l, _)) if Some(l) == locator.as_ref() && attempt == 1 => self.prefetched.take(),
                _ => None,
            };
            let result = match mine.map(|(_, h)| h) {
                Some(handle) => match handle.await {
                    Ok(r) => r,
                    Err(e) => Err(SalesforceError::Transport { what: "prefetch".into(), reason: e.to_string() }),
                },
                None => request(&self.client, &self.job, locator.as_deref(), self.max_records).await,
            };
            match self.read(number, locator.clone(), result).await {
                Ok(page) => break page,
                Err(e) if e.is_retryable() && attempt < policy.attempts => {
                    tracing::warn!(job = self.job.id, page = number, attempt, error = %e, "results page failed; fetching it again by its locator");
                    tokio::time::sleep(policy.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        crate::metrics::global().page_read(&self.job.object, started.elapsed(), self.last_page_bytes);
        self.rows += page.rows;
        self.next_number = number + 1;
        self.next_locator = page.next.clone().map(Some);
        if page.next.is_none()
            && let Some(expected) = self.job.records_processed
            && self.rows < expected
        {
            return Err(SalesforceError::Truncated {
                job_id: self.job.id.clone(),
                reason: format!("the last page came after {} records; the job processed {expected}", self.rows),
            });
        }
        Ok(Some(page))
    }

    async fn read(
        &mut self,
        number: u64,
        locator: Option<String>,
        response: Result<Incoming, SalesforceError>,
    ) -> Result<Page, SalesforceError> {
        let mut response = response?;
        let job_id = self.job.id.clone();
        let header = |name: &str| response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        // A missing header is the last page as far as the protocol goes; the record count
        // check in `next_page` catches a truncation.
        let next = header("Sforce-Locator").filter(|l| !l.is_empty() && l != "null");
        let announced: Option<u64> = header("Sforce-NumberOfRecords").and_then(|n| n.parse().ok());
        if let Some(next) = &next
            && self.prefetch
            && self.prefetched.as_ref().is_none_or(|(l, _)| l != next)
        {
            let (client, job, max) = (self.client.clone(), self.job.clone(), self.max_records);
            let locator = next.clone();
            let handle = tokio::spawn(async move { request(&client, &job, Some(&locator), max).await });
            if let Some((_, old)) = self.prefetched.replace((next.clone(), handle)) {
                old.abort();
            }
        }
        let mut parser = PageParser::new(self.job.column_delimiter, self.batch_size, self.schema.clone());
        let mut batches = Vec::new();
        let csv = |reason: String| SalesforceError::Csv { job_id: job_id.clone(), page: number, reason };
        self.last_page_bytes = 0;
        while let Some(chunk) = response.body.recv().await {
            let (chunk, _permit) = chunk.map_err(|e| e.into_error(&job_id, number, self.client.limits()))?;
            if self.last_page_bytes == 0 {
                crate::fault::point("results.mid_page");
            }
            self.last_page_bytes += chunk.len() as u64;
            parser.feed(&chunk).map_err(|e| csv(e.to_string()))?;
            batches.extend(parser.take_ready());
        }
        parser.finish().map_err(|e| csv(e.to_string()))?;
        batches.extend(parser.take_ready());
        let rows = parser.rows();
        if let Some(n) = announced
            && n != rows
        {
            if let Some((_, h)) = self.prefetched.take() {
                h.abort();
            }
            return Err(SalesforceError::Truncated {
                job_id,
                reason: format!("page {number} announced {n} records (Sforce-NumberOfRecords) but held {rows}"),
            });
        }
        if self.schema.is_none() {
            self.schema = parser.schema().cloned();
        }
        Ok(Page { number, locator, next, batches, rows })
    }
}

/// Why a page's body stopped before its end.
#[derive(Debug)]
enum BodyError {
    /// The connection failed or was cut.
    Cut(String),
    /// `page_timeout` passed before the last byte.
    Late,
    /// More than `max_page_bytes` came.
    TooLong,
}

impl BodyError {
    fn into_error(self, job_id: &str, number: u64, limits: &Limits) -> SalesforceError {
        let truncated = |reason: String| SalesforceError::Truncated { job_id: job_id.to_string(), reason };
        match self {
            Self::Cut(reason) => truncated(format!("page {number} was cut off: {reason}")),
            Self::Late => truncated(format!(
                "page {number} did not arrive whole within salesforce_page_timeout ({})",
                HumanDuration(limits.page_timeout)
            )),
            Self::TooLong => SalesforceError::Protocol {
                what: format!("results of job {job_id}, page {number}"),
                reason: format!("the page is longer than salesforce_max_page_size ({})", bytes(limits.max_page_bytes)),
            },
        }
    }
}

/// Inflated body bytes a page's reader task may hold ahead of the parser.
pub const READ_AHEAD_BYTES: usize = 32 * 1024 * 1024;

/// A page's response: its headers, and its body as read ahead by [`pump`]'s task (stopped when
/// this is dropped).
struct Incoming {
    headers: reqwest::header::HeaderMap,
    body: mpsc::UnboundedReceiver<Result<(Bytes, OwnedSemaphorePermit), BodyError>>,
    pump: tokio::task::JoinHandle<()>,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// Reads `response`'s body on a task of its own, holding at most [`READ_AHEAD_BYTES`] (a chunk
/// goes with the permits for its size, given back when the parser is done with it).
fn pump(response: reqwest::Response, limits: Limits) -> Incoming {
    let headers = response.headers().clone();
    let (tx, body) = mpsc::unbounded_channel();
    let budget = Arc::new(Semaphore::new(READ_AHEAD_BYTES >> 10));
    let pump = tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        let mut read = 0u64;
        while let Some(chunk) = stream.next().await {
            let item = match chunk {
                Ok(chunk) if read + chunk.len() as u64 > limits.max_page_bytes => Err(BodyError::TooLong),
                Ok(chunk) => {
                    read += chunk.len() as u64;
                    let kib =
                        u32::try_from((chunk.len() >> 10) + 1).unwrap_or(u32::MAX).min((READ_AHEAD_BYTES >> 10) as u32);
                    let Ok(permit) = budget.clone().acquire_many_owned(kib).await else { return };
                    Ok((chunk, permit))
                }
                Err(e) if e.is_timeout() => Err(BodyError::Late),
                Err(e) => Err(BodyError::Cut(e.without_url().to_string())),
            };
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                return;
            }
        }
    });
    Incoming { headers, body, pump }
}

async fn request(
    client: &SalesforceClient,
    job: &JobInfo,
    locator: Option<&str>,
    max_records: Option<usize>,
) -> Result<Incoming, SalesforceError> {
    // Results must be read with the API version that created the job, or Salesforce answers 409.
    let version = if job.api_version.is_empty() { client.api_version().to_string() } else { job.api_version.clone() };
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(l) = locator {
        query.push(("locator", l.to_string()));
    }
    if let Some(m) = max_records {
        query.push(("maxRecords", m.to_string()));
    }
    let what = format!("results of job {}", job.id);
    let limits = *client.limits();
    let response = client
        .send(&what, |http, s| {
            http.get(format!("{}/jobs/query/{}/results", SalesforceClient::data_url(s, &version), job.id))
                .query(&query)
                .timeout(limits.page_timeout)
        })
        .await?;
    check_page_answer(&what, &response, &limits)?;
    Ok(pump(response, limits))
}

/// A results page is CSV, and no longer than `max_page_bytes`; anything else (a proxy's HTML
/// page answered with 200, a body announcing gigabytes) is refused before its body is read.
fn check_page_answer(what: &str, response: &reqwest::Response, limits: &Limits) -> Result<(), SalesforceError> {
    let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Some(ct) = content_type {
        let media = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !media.ends_with("/csv") {
            return Err(SalesforceError::Garbled { what: what.into(), reason: format!("`{ct}` where CSV belongs") });
        }
    }
    if let Some(n) = response.content_length()
        && n > limits.max_page_bytes
    {
        return Err(SalesforceError::Protocol {
            what: what.into(),
            reason: format!(
                "the page announces {n} bytes (Content-Length), more than salesforce_max_page_size ({})",
                bytes(limits.max_page_bytes)
            ),
        });
    }
    Ok(())
}
