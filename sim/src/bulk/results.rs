//! `GET .../jobs/query/{id}/results`: one page of CSV, streamed.
//!
//! The page is rendered on a blocking thread in chunks and sent through a small channel, so a
//! 50,000-row page never sits in memory whole and a client that stops reading stops the rendering.
//! Default pages a job already rendered (see [`super::rendered`]) go out as they are.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::mpsc;

use super::{hostile, locator, version};
use crate::api_error::ApiError;
use crate::csv_writer::CsvFormat;
use crate::events::JobState;
use crate::oauth::session::Session;
use crate::state::{AppState, lock};
use crate::store::results::Results;

const CUT_FLUSH_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

pub async fn results(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path((version, job_id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let api_version = version::parse(&version)?;
    let (results, format, rendered) = {
        let jobs = lock(&app.jobs);
        let job = jobs.get(&job_id).ok_or_else(ApiError::not_found)?;
        if job.record.api_version != api_version {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "API_VERSION_MISMATCH",
                format!(
                    "Job {job_id} was created with API version {}; request its results with the same version, not {api_version}",
                    job.record.api_version
                ),
            ));
        }
        if job.record.state != JobState::JobComplete {
            return Err(ApiError::bad_request(
                "INVALIDJOBSTATE",
                format!(
                    "Results are available only for a job in state JobComplete; this job is {:?}",
                    job.record.state
                ),
            ));
        }
        (job.results.clone().ok_or_else(ApiError::not_found)?, job.record.format(), job.rendered.clone())
    };
    let locator_param = params.get("locator").map(String::as_str).filter(|l| !l.is_empty());
    app.stats.results_request(&job_id, locator_param);

    let total = results.len();
    let offset = match locator_param {
        None => 0,
        Some(l) => locator::decode(l)
            .filter(|&o| o <= total)
            .ok_or_else(|| ApiError::bad_request("INVALID_LOCATOR", format!("Invalid locator: {l}")))?,
    };
    let cap = app.settings.max_page_records;
    let page_size = match params.get("maxRecords") {
        None => cap,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if n > 0 => n.min(cap),
            _ => {
                return Err(ApiError::bad_request(
                    "INVALIDREQUEST",
                    format!("maxRecords must be a positive integer, not {m}"),
                ));
            }
        },
    };
    let rows = page_size.min(total - offset);
    let next = if offset + rows < total { locator::encode(offset + rows) } else { "null".to_string() };
    let gzip = accepts_gzip(&headers);
    let hostile = app.faults.take_page_fault(locator_param.is_some());
    if let Some(fault) = hostile {
        app.stats.fault(fault.name());
        if let Some(response) = hostile::replacement(fault) {
            return Ok(response);
        }
    }
    let cut_after = app.faults.take_cut();
    if cut_after.is_some() {
        app.stats.fault("cut_results");
    }
    app.stats.page_served(&job_id);

    let ready = match rendered.filter(|_| gzip && cut_after.is_none() && hostile.is_none()) {
        Some(r) => r.page(offset, rows).await,
        None => None,
    };
    let (body, gzipped, announced_length) = match (ready, hostile) {
        (Some(bytes), _) => (Body::from(bytes), gzip, None),
        (None, Some(fault)) => {
            let csv = tokio::task::spawn_blocking(move || {
                let mut csv = Vec::new();
                super::rendered::write_rows(&results, format, offset, rows, |chunk| {
                    csv.extend_from_slice(chunk);
                    true
                });
                csv
            })
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION", e.to_string()))?;
            let stats_app = app.clone();
            let page = hostile::page(fault, csv, gzip, move || stats_app.stats.fault("page_body_chunk"));
            (page.body, page.gzipped, page.announced_length)
        }
        (None, None) => (Page { results, format, offset, rows, gzip, cut_after }.into_body(), gzip, None),
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    if let Some(length) = announced_length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    let announced = if app.faults.take_miscount() {
        app.stats.fault("miscount_pages");
        rows + 1
    } else {
        rows
    };
    h.insert("Sforce-NumberOfRecords", HeaderValue::from(announced));
    if app.faults.take_dropped_locator() {
        app.stats.fault("drop_locators");
    } else {
        h.insert("Sforce-Locator", HeaderValue::from_str(&next).expect("base64 is a valid header value"));
    }
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

/// `Accept-Encoding` names gzip (and does not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        },
    )
}

struct Page {
    results: Arc<Results>,
    format: CsvFormat,
    offset: usize,
    rows: usize,
    gzip: bool,
    /// Drop the connection after this many body bytes (the `cut_results` fault).
    cut_after: Option<u64>,
}

type Chunk = Result<Bytes, std::io::Error>;

impl Page {
    fn into_body(self) -> Body {
        let (tx, rx) = mpsc::channel::<Chunk>(4);
        tokio::task::spawn_blocking(move || self.render(&tx));
        Body::from_stream(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
        ))
    }

    fn render(self, tx: &mpsc::Sender<Chunk>) {
        let mut sink = Sink {
            tx,
            gzip: self.gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
            sent: 0,
            cut_after: self.cut_after,
        };
        if super::rendered::write_rows(&self.results, self.format, self.offset, self.rows, |csv| sink.send(csv)) {
            sink.finish();
        }
    }
}

/// Compresses (when asked), counts and cuts the bytes on their way to the client.
struct Sink<'a> {
    tx: &'a mpsc::Sender<Chunk>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    sent: u64,
    cut_after: Option<u64>,
}

impl Sink<'_> {
    /// False when the body is over: the client went away or the connection was cut.
    fn send(&mut self, csv: &[u8]) -> bool {
        let bytes = match &mut self.gzip {
            None => csv.to_vec(),
            Some(encoder) => {
                if encoder.write_all(csv).is_err() {
                    return false;
                }
                std::mem::take(encoder.get_mut())
            }
        };
        self.emit(bytes)
    }

    fn finish(mut self) {
        if let Some(encoder) = self.gzip.take()
            && let Ok(tail) = encoder.finish()
        {
            self.emit(tail);
        }
    }

    fn emit(&mut self, mut bytes: Vec<u8>) -> bool {
        if let Some(limit) = self.cut_after
            && self.sent + bytes.len() as u64 >= limit
        {
            bytes.truncate(usize::try_from(limit - self.sent).unwrap_or(usize::MAX));
            if !bytes.is_empty() {
                let _ = self.tx.blocking_send(Ok(Bytes::from(bytes)));
                // Give the server time to put the bytes on the wire: an error right behind them
                // makes it drop its unflushed buffer, and the cut would come before any byte.
                std::thread::sleep(CUT_FLUSH_GRACE);
            }
            let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated connection cut");
            let _ = self.tx.blocking_send(Err(cut));
            return false;
        }
        self.sent += bytes.len() as u64;
        bytes.is_empty() || self.tx.blocking_send(Ok(Bytes::from(bytes))).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip"));
        assert!(with("deflate, gzip;q=0.8"));
        assert!(!with("gzip;q=0"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
