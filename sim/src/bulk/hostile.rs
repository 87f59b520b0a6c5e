//! Results pages sent wrong on purpose (the `FaultConfig` page faults): each is what a broken
//! server or a proxy in front of it can send, so a client's defences can be shown to hold.

use std::io::Write;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::faults::PageFault;

/// The page a captive portal shows instead of what was asked for.
const PORTAL_PAGE: &str = "<!DOCTYPE html><html><head><title>Sign in to continue</title></head>\
    <body><h1>Network login required</h1><form method=\"post\" action=\"/login\">\
    <input name=\"user\"><input name=\"password\" type=\"password\"></form></body></html>\n";

/// Chunk size of a huge page's body (the unit `page_body_chunk` counts).
const HUGE_CHUNK: usize = 64 * 1024;

/// A page's body carrying a fault.
pub struct HostilePage {
    pub body: Body,
    /// Whether the body is gzipped (`Content-Encoding: gzip`).
    pub gzipped: bool,
    /// A `Content-Length` to announce, whatever the body holds.
    pub announced_length: Option<u64>,
}

/// The whole answer for faults that replace the page with something else entirely.
pub fn replacement(fault: PageFault) -> Option<Response> {
    (fault == PageFault::Html).then(|| {
        let mut response = Response::new(Body::from(PORTAL_PAGE));
        *response.status_mut() = StatusCode::OK;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
        response
    })
}

/// The page as it should have been (`csv`), carrying `fault`; `on_chunk` counts a huge page's
/// chunks as they go out.
pub fn page(fault: PageFault, mut csv: Vec<u8>, gzip: bool, on_chunk: impl Fn() + Send + 'static) -> HostilePage {
    let whole = |csv: Vec<u8>| {
        let (bytes, gzipped) = if gzip { (gzipped(&csv), true) } else { (csv, false) };
        HostilePage { body: Body::from(bytes), gzipped, announced_length: None }
    };
    match fault {
        PageFault::Html => whole(csv),
        PageFault::RenameHeader => {
            let end = line_end(&csv, 0);
            let at = if end > 0 && csv[end - 1] == b'"' { end - 1 } else { end };
            csv.splice(at..at, b"__renamed".iter().copied());
            whole(csv)
        }
        PageFault::UnterminatedQuote => {
            // The last field of the last record: a lenient parser takes the rest of the page
            // (its newline) into that field and carries on, the record count unchanged.
            let end = if csv.ends_with(b"\n") { csv.len() - 1 } else { csv.len() };
            if end > 0 && csv[end - 1] == b'"' {
                csv.remove(end - 1);
            } else {
                let start = csv[..end].iter().rposition(|&b| b == b',' || b == b'\n').map_or(0, |i| i + 1);
                csv.insert(start, b'"');
            }
            whole(csv)
        }
        PageFault::InvalidUtf8 => {
            let at = (line_end(&csv, 0) + 2).min(csv.len());
            csv.insert(at, 0xFF);
            whole(csv)
        }
        PageFault::TruncatedGzip => {
            let (mut bytes, gzipped) = if gzip { (gzipped(&csv), true) } else { (csv, false) };
            bytes.truncate(bytes.len() / 2);
            HostilePage { body: Body::from(bytes), gzipped, announced_length: None }
        }
        PageFault::Huge(length) => {
            HostilePage { body: huge_body(csv, length, on_chunk), gzipped: false, announced_length: Some(length) }
        }
        PageFault::Slow(interval) => {
            HostilePage { body: slow_body(csv, interval), gzipped: false, announced_length: None }
        }
    }
}

/// Where the line starting at `from` ends (its `\n`, or the end of the text).
fn line_end(csv: &[u8], from: usize) -> usize {
    csv.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'\n')).map_or(csv.len(), |i| from + i)
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// `length` bytes: the page, then its records again and again (valid CSV throughout, so only a
/// bound on size stops a reader), made as they are read.
fn huge_body(csv: Vec<u8>, length: u64, on_chunk: impl Fn() + Send + 'static) -> Body {
    let records_from = (line_end(&csv, 0) + 1).min(csv.len());
    let mut filler = csv[records_from..].to_vec();
    if filler.is_empty() {
        filler = b"\n".to_vec();
    }
    let mut source = csv.into_iter().chain(filler.into_iter().cycle());
    let chunks = futures_util::stream::unfold(0u64, move |sent| {
        let chunk = (sent < length).then(|| {
            let n = usize::try_from((length - sent).min(HUGE_CHUNK as u64)).unwrap_or(HUGE_CHUNK);
            let chunk: Vec<u8> = source.by_ref().take(n).collect();
            on_chunk();
            (Ok::<_, std::io::Error>(Bytes::from(chunk)), sent + n as u64)
        });
        std::future::ready(chunk)
    });
    Body::from_stream(chunks)
}

/// The page, a byte per `interval`.
fn slow_body(csv: Vec<u8>, interval: Duration) -> Body {
    let bytes = futures_util::stream::unfold(csv.into_iter(), move |mut rest| async move {
        let byte = rest.next()?;
        tokio::time::sleep(interval).await;
        Some((Ok::<_, std::io::Error>(Bytes::from(vec![byte])), rest))
    });
    Body::from_stream(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[u8] = b"\"Id\",\"Name\"\n\"001A\",\"Acme\"\n\"001B\",\"Beta\"\n";

    async fn body_of(fault: PageFault) -> Vec<u8> {
        let page = page(fault, PAGE.to_vec(), false, || ());
        axum::body::to_bytes(page.body, usize::MAX).await.unwrap().to_vec()
    }

    #[tokio::test]
    async fn each_mangling_breaks_the_page_where_it_says() {
        assert_eq!(
            body_of(PageFault::RenameHeader).await,
            b"\"Id\",\"Name__renamed\"\n\"001A\",\"Acme\"\n\"001B\",\"Beta\"\n"
        );
        assert_eq!(
            body_of(PageFault::UnterminatedQuote).await,
            b"\"Id\",\"Name\"\n\"001A\",\"Acme\"\n\"001B\",\"Beta\n"
        );
        assert_eq!(
            body_of(PageFault::InvalidUtf8).await,
            b"\"Id\",\"Name\"\n\"\xFF001A\",\"Acme\"\n\"001B\",\"Beta\"\n"
        );
        assert_eq!(body_of(PageFault::TruncatedGzip).await.len(), PAGE.len() / 2);
    }

    #[tokio::test]
    async fn a_huge_page_sends_exactly_what_it_announces_and_repeats_records() {
        let page = page(PageFault::Huge(200_000), PAGE.to_vec(), false, || ());
        assert_eq!(page.announced_length, Some(200_000));
        let bytes = axum::body::to_bytes(page.body, usize::MAX).await.unwrap();
        assert_eq!(bytes.len(), 200_000);
        assert!(bytes.starts_with(PAGE));
        assert_eq!(&bytes[PAGE.len()..PAGE.len() + 28], &PAGE[12..40]);
    }
}
