//! Process-wide measurements the ledger does not keep — how long results pages take, bytes read
//! and written — for the engine's `/metrics`. Counted since the process started, as Prometheus
//! counters and histograms expect.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds (seconds) of the page latency histogram: a page is 50,000 rows by default, from
/// tens of milliseconds on a fast link to a minute on a throttled org.
pub const PAGE_SECONDS_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Per bucket of [`PAGE_SECONDS_BUCKETS`], not cumulative; the text format sums them.
    counts: [u64; PAGE_SECONDS_BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    page_seconds: BTreeMap<String, Histogram>,
    page_bytes: BTreeMap<String, u64>,
    written_bytes: BTreeMap<(String, String), u64>,
    events_skipped: BTreeMap<(String, String), u64>,
    ledger_commits: u64,
    ledger_commit_seconds: f64,
}

#[derive(Debug, Default)]
pub struct Registry(Mutex<Inner>);

/// The process's registry.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// Label values escaped as the text format requires.
pub fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Registry {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A results page of `object` read in `took`, `bytes` of CSV.
    pub fn page_read(&self, object: &str, took: Duration, bytes: u64) {
        let seconds = took.as_secs_f64();
        let mut inner = self.inner();
        let h = inner.page_seconds.entry(object.to_owned()).or_default();
        if let Some(i) = PAGE_SECONDS_BUCKETS.iter().position(|b| seconds <= *b) {
            h.counts[i] += 1;
        }
        h.sum += seconds;
        h.count += 1;
        *inner.page_bytes.entry(object.to_owned()).or_default() += bytes;
    }

    /// `bytes` written by `sink` (a task) of `flow`.
    pub fn written(&self, flow: &str, sink: &str, bytes: u64) {
        *self.inner().written_bytes.entry((flow.to_owned(), sink.to_owned())).or_default() += bytes;
    }

    /// A Pub/Sub event `flow` could not read and moved past.
    pub fn event_skipped(&self, flow: &str, reason: &str) {
        *self.inner().events_skipped.entry((flow.to_owned(), reason.to_owned())).or_default() += 1;
    }

    /// Events of `flow` skipped for `reason` so far.
    pub fn events_skipped(&self, flow: &str, reason: &str) -> u64 {
        self.inner().events_skipped.get(&(flow.to_owned(), reason.to_owned())).copied().unwrap_or_default()
    }

    /// A ledger commit (a checkpoint, with its fsync) that took `took`, whatever its outcome:
    /// the figure that says what durability costs a run.
    pub fn ledger_commit(&self, took: Duration) {
        let mut inner = self.inner();
        inner.ledger_commits += 1;
        inner.ledger_commit_seconds += took.as_secs_f64();
    }

    /// The families in Prometheus text format, appended to `out`.
    pub fn render(&self, out: &mut String) {
        let inner = self.inner();
        let _ = writeln!(
            out,
            "# HELP bulkflow_ledger_commits_total Commits to the run ledger (each durable when it returns).\n\
             # TYPE bulkflow_ledger_commits_total counter\n\
             bulkflow_ledger_commits_total {}\n\
             # HELP bulkflow_ledger_commit_seconds_total Time spent in run ledger commits.\n\
             # TYPE bulkflow_ledger_commit_seconds_total counter\n\
             bulkflow_ledger_commit_seconds_total {}",
            inner.ledger_commits, inner.ledger_commit_seconds
        );
        let _ = writeln!(
            out,
            "# HELP bulkflow_page_seconds Time to read one Bulk API results page, by object.\n\
             # TYPE bulkflow_page_seconds histogram"
        );
        for (object, h) in &inner.page_seconds {
            let object = label(object);
            let mut cumulative = 0;
            for (bound, n) in PAGE_SECONDS_BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                let _ =
                    writeln!(out, "bulkflow_page_seconds_bucket{{object=\"{object}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "bulkflow_page_seconds_bucket{{object=\"{object}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "bulkflow_page_seconds_sum{{object=\"{object}\"}} {}", h.sum);
            let _ = writeln!(out, "bulkflow_page_seconds_count{{object=\"{object}\"}} {}", h.count);
        }
        let _ = writeln!(
            out,
            "# HELP bulkflow_page_bytes_total Bytes of Bulk API results read, by object.\n\
             # TYPE bulkflow_page_bytes_total counter"
        );
        for (object, n) in &inner.page_bytes {
            let _ = writeln!(out, "bulkflow_page_bytes_total{{object=\"{}\"}} {n}", label(object));
        }
        let _ = writeln!(
            out,
            "# HELP bulkflow_written_bytes_total Bytes of files written, by writer flow and sink task.\n\
             # TYPE bulkflow_written_bytes_total counter"
        );
        for ((flow, sink), n) in &inner.written_bytes {
            let _ =
                writeln!(out, "bulkflow_written_bytes_total{{flow=\"{}\",sink=\"{}\"}} {n}", label(flow), label(sink));
        }
        let _ = writeln!(
            out,
            "# HELP bulkflow_pubsub_events_skipped_total Pub/Sub events that could not be read (undecodable, or \
             naming a schema the server cannot resolve) and were moved past, by listener flow.\n\
             # TYPE bulkflow_pubsub_events_skipped_total counter"
        );
        for ((flow, reason), n) in &inner.events_skipped {
            let _ = writeln!(
                out,
                "bulkflow_pubsub_events_skipped_total{{flow=\"{}\",reason=\"{}\"}} {n}",
                label(flow),
                label(reason)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_add_up() {
        let r = Registry::default();
        r.page_read("Account", Duration::from_millis(80), 1000);
        r.page_read("Account", Duration::from_secs(3), 500);
        r.page_read("Account", Duration::from_secs(120), 1);
        r.written("w", "lake", 10);
        r.written("w", "lake", 5);
        r.ledger_commit(Duration::from_millis(250));
        r.ledger_commit(Duration::from_millis(500));
        let mut out = String::new();
        r.render(&mut out);
        assert!(out.contains("bulkflow_page_seconds_bucket{object=\"Account\",le=\"0.05\"} 0\n"), "{out}");
        assert!(out.contains("bulkflow_page_seconds_bucket{object=\"Account\",le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("bulkflow_page_seconds_bucket{object=\"Account\",le=\"5\"} 2\n"), "{out}");
        assert!(out.contains("bulkflow_page_seconds_bucket{object=\"Account\",le=\"60\"} 2\n"), "{out}");
        assert!(out.contains("bulkflow_page_seconds_bucket{object=\"Account\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("bulkflow_page_seconds_count{object=\"Account\"} 3\n"), "{out}");
        assert!(out.contains("bulkflow_page_bytes_total{object=\"Account\"} 1501\n"), "{out}");
        assert!(out.contains("bulkflow_written_bytes_total{flow=\"w\",sink=\"lake\"} 15\n"), "{out}");
        assert!(out.contains("bulkflow_ledger_commits_total 2\n"), "{out}");
        assert!(out.contains("bulkflow_ledger_commit_seconds_total 0.75\n"), "{out}");
    }
}
