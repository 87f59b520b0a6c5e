//! `/metrics` (Prometheus text format), `/healthz` and `/readyz` over plain HTTP/1.1: a handful of
//! GETs from a scraper or a supervisor do not need a web framework. Figures are read from the
//! ledger at each scrape, so they survive restarts and agree with `bulkflow runs list`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bulkflow_engine::metrics::label;
use bulkflow_engine::run::{Ledger, LedgerError, RESULTS_STAGE, RunFilter, RunState};
use bulkflow_engine::runtime::source::Waits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request head longer than this is not a scraper's.
const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the engine is serving: its flows and control API started (cleared on stop), and no
/// source waits for something it needs (a bus not up yet).
#[derive(Clone)]
pub struct Readiness {
    started: Arc<AtomicBool>,
    waits: Waits,
    store: bulkflow_engine::store::StoreHealth,
}

impl Readiness {
    pub fn new(waits: Waits, store: bulkflow_engine::store::StoreHealth) -> Self {
        Self { started: Arc::default(), waits, store }
    }

    pub fn set(&self, ready: bool) {
        self.started.store(ready, Ordering::SeqCst);
    }

    /// `Ok` when ready, else why not, a line per reason.
    fn check(&self) -> Result<(), String> {
        if !self.started.load(Ordering::SeqCst) {
            return Err("not ready: starting or stopping\n".into());
        }
        let waits = self.waits.list();
        let store = self.store.failing();
        if waits.is_empty() && store.is_none() {
            return Ok(());
        }
        let mut why: String = store.map(|s| format!("not ready: {s}\n")).unwrap_or_default();
        why.extend(waits.iter().map(|(flow, why)| format!("not ready: flow `{flow}` waits: {why}\n")));
        Err(why)
    }
}

/// Serves until the task is aborted; returns the bound address (for port 0).
pub async fn serve(
    addr: SocketAddr,
    ledger: Arc<Ledger>,
    ready: Readiness,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, "metrics and health listening");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let ledger = ledger.clone();
            let ready = ready.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &ledger, &ready).await {
                    tracing::debug!(error = %e, "metrics request");
                }
            });
        }
    });
    Ok((bound, task))
}

async fn answer(mut stream: tokio::net::TcpStream, ledger: &Ledger, ready: &Readiness) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf)).await.map_err(std::io::Error::other)??;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_owned()),
        ("GET", "/readyz") => match ready.check() {
            Ok(()) => ("200 OK", "text/plain", "ready\n".to_owned()),
            Err(why) => ("503 Service Unavailable", "text/plain", why),
        },
        ("GET", "/metrics") => match render(ledger) {
            Ok(text) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text),
            Err(e) => ("500 Internal Server Error", "text/plain", format!("{e}\n")),
        },
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The metrics text, from the ledger's runs and their results checkpoints.
pub fn render(ledger: &Ledger) -> Result<String, LedgerError> {
    let runs = ledger.list_runs(&RunFilter::default())?;
    let mut by_state: BTreeMap<&str, u64> = RunState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut retries = 0u64;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    let mut pages: BTreeMap<String, u64> = BTreeMap::new();
    let mut published: BTreeMap<String, u64> = BTreeMap::new();
    let mut written: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut lag: BTreeMap<String, u64> = BTreeMap::new();
    let mut waiting: BTreeMap<String, u64> = BTreeMap::new();
    let mut without_writer: BTreeMap<String, u64> = BTreeMap::new();
    for run in &runs {
        if let Some(why) = ledger.waiting_reason(run)? {
            *waiting.entry(run.flow().to_owned()).or_default() += 1;
            if why.starts_with(bulkflow_engine::run::NO_WRITER) {
                *without_writer.entry(run.flow().to_owned()).or_default() += 1;
            }
        }
        *by_state.entry(run.state().as_str()).or_default() += 1;
        retries += u64::from(run.attempts().saturating_sub(1));
        let failed = run.history().iter().filter(|h| h.to == RunState::Failed).count() as u64;
        *failures.entry(run.flow().to_owned()).or_default() += failed;
        if let Some(c) = ledger.checkpoint(run.id(), RESULTS_STAGE)? {
            let p = &c.progress;
            *records.entry(run.flow().to_owned()).or_default() += p.records_fetched;
            *pages.entry(run.flow().to_owned()).or_default() += p.pages_fetched;
            *published.entry(run.flow().to_owned()).or_default() += p.batches_published.len() as u64;
            for (sink, batches) in &p.batches_written {
                *written.entry((run.flow().to_owned(), sink.clone())).or_default() += batches.len() as u64;
            }
            // Published but not yet written by a writer flow that must write them: the bus's
            // backlog, in batches (a finished run's is 0).
            for sink in ledger.consumers_of(&p.subjects) {
                let done = p.batches_written.get(&sink).map_or(0, |w| w.len());
                let behind = if run.state().is_terminal() { 0 } else { p.batches_published.len().saturating_sub(done) };
                *lag.entry(sink).or_default() += behind as u64;
            }
        }
    }
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let per_flow = |m: &BTreeMap<String, u64>| -> Vec<(String, u64)> {
        m.iter().map(|(flow, v)| (format!("{{flow=\"{}\"}}", label(flow)), *v)).collect()
    };
    family(
        "bulkflow_runs",
        "gauge",
        "Runs in the ledger, by state.",
        by_state.iter().map(|(s, n)| (format!("{{state=\"{s}\"}}"), *n)).collect(),
    );
    family("bulkflow_run_retries", "gauge", "Retries of the runs in the ledger.", vec![(String::new(), retries)]);
    family("bulkflow_run_failures", "gauge", "Failures of the runs in the ledger, by flow.", per_flow(&failures));
    family(
        "bulkflow_records_fetched",
        "gauge",
        "Records fetched by the runs in the ledger, by flow.",
        per_flow(&records),
    );
    family(
        "bulkflow_pages_fetched",
        "gauge",
        "Results pages fetched by the runs in the ledger, by flow.",
        per_flow(&pages),
    );
    family(
        "bulkflow_batches_published",
        "gauge",
        "Batches the bus acknowledged, for the runs in the ledger, by flow.",
        per_flow(&published),
    );
    family(
        "bulkflow_batches_written",
        "gauge",
        "Batches written, for the runs in the ledger, by flow and sink.",
        written
            .iter()
            .map(|((flow, sink), n)| (format!("{{flow=\"{}\",sink=\"{}\"}}", label(flow), label(sink)), *n))
            .collect(),
    );
    family(
        "bulkflow_bus_lag_batches",
        "gauge",
        "Batches on the bus that a writer flow has not written yet, over unfinished runs, by writer flow.",
        lag.iter().map(|(sink, n)| (format!("{{sink=\"{}\"}}", label(sink)), *n)).collect(),
    );
    family(
        "bulkflow_runs_without_writer",
        "gauge",
        "Runs left `published` because no writer flow subscribes to their subjects, by flow.",
        per_flow(&without_writer),
    );
    family(
        "bulkflow_runs_waiting",
        "gauge",
        "Unfinished runs held up, with the reason in `runs show` (no writer flow, Salesforce refusing their calls), by flow.",
        per_flow(&waiting),
    );
    let skipped: BTreeMap<String, u64> = ledger.skipped_ticks().into_iter().map(|(f, s)| (f, s.count)).collect();
    family(
        "bulkflow_ticks_skipped_total",
        "counter",
        "Scheduled ticks that opened no run because the flow's previous run was unfinished, by flow.",
        per_flow(&skipped),
    );
    // Page latency and bytes: measured as they happen, not kept in the ledger.
    bulkflow_engine::metrics::global().render(&mut out);
    Ok(out)
}
