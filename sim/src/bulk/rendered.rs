//! A job's result pages rendered once, in the background from the moment the job is created, as
//! Salesforce prepares a job's result files while the job runs: gzipped CSV of the pages a client
//! gets by default (`maxRecords` absent or the page cap, from locators on page boundaries).
//!
//! Generating a record's values and gzipping them is most of the simulator's CPU, and a benchmark
//! of a client must not measure the simulator: a page asked for once it is rendered is a copy of
//! bytes, and one still being rendered is waited for (rendering it twice would only slow both).
//! Another page size, or a client that does not take gzip, is rendered live, as before. Rendering
//! stops past [`MAX_BYTES`] of gzip per job (later pages are rendered live), and when the job (its
//! results) is dropped.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::Notify;

use crate::csv_writer::CsvFormat;
use crate::store::results::Results;

/// Gzipped bytes kept per job; later pages are rendered live.
pub const MAX_BYTES: usize = 1 << 30;

pub struct Rendered {
    page_rows: usize,
    total_rows: usize,
    pages: Vec<OnceLock<Bytes>>,
    /// The next page a worker will take; pages below it are rendered or being rendered.
    next: AtomicUsize,
    kept: AtomicUsize,
    /// No page at or past `next` will be rendered (the byte cap was reached).
    stopped: AtomicBool,
    rendered: Notify,
}

impl Rendered {
    /// Starts rendering `results` in pages of `page_rows`, on one blocking thread per core: the
    /// job's own latency is the time to do it in, as Salesforce does.
    pub fn start(results: Arc<Results>, format: CsvFormat, page_rows: usize) -> Arc<Self> {
        let page_rows = page_rows.max(1);
        let total_rows = results.len();
        let count = total_rows.div_ceil(page_rows);
        let rendered = Arc::new(Self {
            page_rows,
            total_rows,
            pages: (0..count).map(|_| OnceLock::new()).collect(),
            next: AtomicUsize::new(0),
            kept: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            rendered: Notify::new(),
        });
        let workers = std::thread::available_parallelism().map_or(1, usize::from).min(count);
        for _ in 0..workers {
            let (weak, results) = (Arc::downgrade(&rendered), results.clone());
            tokio::task::spawn_blocking(move || render(&weak, &results, format));
        }
        rendered
    }

    /// The gzipped page of `rows` rows at `offset` if it is one of the default pages, waiting for
    /// it when it is being rendered; `None` for a page that will not be.
    pub async fn page(&self, offset: usize, rows: usize) -> Option<Bytes> {
        if !offset.is_multiple_of(self.page_rows) || rows != self.page_rows.min(self.total_rows.saturating_sub(offset))
        {
            return None;
        }
        let index = offset / self.page_rows;
        let slot = self.pages.get(index)?;
        loop {
            let rendered = self.rendered.notified();
            tokio::pin!(rendered);
            rendered.as_mut().enable();
            if let Some(bytes) = slot.get() {
                return Some(bytes.clone());
            }
            if self.stopped.load(Ordering::Acquire) && index >= self.next.load(Ordering::Acquire) {
                return None;
            }
            rendered.await;
        }
    }
}

fn render(rendered: &Weak<Rendered>, results: &Results, format: CsvFormat) {
    loop {
        // The job was deleted or its results dropped: stop.
        let Some(r) = rendered.upgrade() else { return };
        if r.kept.load(Ordering::Acquire) > MAX_BYTES {
            r.stopped.store(true, Ordering::Release);
            r.rendered.notify_waiters();
            return;
        }
        let index = r.next.fetch_add(1, Ordering::AcqRel);
        if index >= r.pages.len() {
            return;
        }
        let offset = index * r.page_rows;
        let rows = r.page_rows.min(r.total_rows - offset);
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        write_rows(results, format, offset, rows, |csv| gz.write_all(csv).is_ok());
        let bytes = gz.finish().unwrap_or_default();
        r.kept.fetch_add(bytes.len(), Ordering::AcqRel);
        let _ = r.pages[index].set(Bytes::from(bytes));
        r.rendered.notify_waiters();
    }
}

/// Uncompressed bytes gathered before `emit` is called.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The CSV of `rows` rows from `offset` (header first), handed to `emit` in chunks of about
/// [`CHUNK_BYTES`]; false when `emit` refused one.
pub fn write_rows(
    results: &Results,
    format: CsvFormat,
    offset: usize,
    rows: usize,
    mut emit: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
    format.write_row(&mut buf, results.columns().iter().map(|c| Some(c.as_str())));
    for i in offset..offset + rows {
        let row = results.row(i);
        format.write_row(&mut buf, row.iter().map(Option::as_deref));
        if buf.len() >= CHUNK_BYTES {
            if !emit(&buf) {
                return false;
            }
            buf.clear();
        }
    }
    emit(&buf)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::csv_writer::{ColumnDelimiter, LineEnding};
    use crate::store::results::StoredRows;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn default_pages_are_rendered_once_as_the_live_rendering_would_write_them() {
        let rows: Vec<Vec<Option<String>>> = (0..2_500)
            .map(|i| vec![Some(format!("001{i:015}")), (i % 3 != 0).then(|| format!("Name \"{i}\""))])
            .collect();
        let results = Arc::new(Results::Stored(StoredRows { columns: vec!["Id".into(), "Name".into()], rows }));
        let format = CsvFormat { delimiter: ColumnDelimiter::Comma, line_ending: LineEnding::Lf };
        let rendered = Rendered::start(results.clone(), format, 1_000);
        for (offset, rows) in [(2_000, 500), (0, 1_000), (1_000, 1_000)] {
            let gz = rendered.page(offset, rows).await.expect("a default page");
            let mut csv = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut csv).unwrap();
            let mut live = Vec::new();
            assert!(write_rows(&results, format, offset, rows, |c| {
                live.extend_from_slice(c);
                true
            }));
            assert_eq!(csv, live, "page at {offset}");
        }
        // Other page sizes and offsets are not kept.
        assert!(rendered.page(0, 999).await.is_none() && rendered.page(500, 1_000).await.is_none());
    }
}
