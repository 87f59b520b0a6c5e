use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use reqwest::StatusCode;

use crate::common::{Org, config, fixed_start, header};

/// Counts CSV records in a page without materialising them: quote-aware, since values may hold
/// newlines.
fn count_records(body: &[u8]) -> usize {
    let mut in_quotes = false;
    let mut records = 0;
    for &b in body {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => records += 1,
            _ => {}
        }
    }
    records
}

fn digest(body: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

#[tokio::test]
async fn a_million_records_page_through_stable_locators() {
    const TOTAL: usize = 1_000_000;
    let started = Instant::now();
    let org = Org::start(config(TOTAL)).await;
    let generated = started.elapsed();
    // The seed's own export query: realistic row width, ordered as the flows ask.
    let from = (fixed_start() - chrono::Duration::hours(24)).format("%Y-%m-%dT%H:%M:%SZ");
    let soql = format!(
        "SELECT Id, Name, Type, Industry, AnnualRevenue, CreatedDate, LastModifiedDate \
         FROM Account WHERE LastModifiedDate >= {from} ORDER BY LastModifiedDate ASC"
    );
    let id = org.create_ok(&soql).await;
    org.wait(&id).await;
    let queried = started.elapsed();

    let mut locator: Option<String> = None;
    let mut seen = 0;
    let mut bytes = 0;
    let mut pages = Vec::new();
    loop {
        let mut q = Vec::new();
        if let Some(l) = &locator {
            q.push(("locator", l.as_str()));
        }
        let resp = org.results(&id, &q).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let count: usize = header(&resp, "Sforce-NumberOfRecords").parse().unwrap();
        let next = header(&resp, "Sforce-Locator").to_string();
        let body = resp.bytes().await.unwrap();
        assert_eq!(count_records(&body), count + 1, "header plus rows");
        seen += count;
        bytes += body.len();
        pages.push((locator.clone(), digest(&body)));
        if next == "null" {
            break;
        }
        locator = Some(next);
    }
    let paged = started.elapsed();
    assert_eq!(seen, TOTAL);
    assert_eq!(pages.len(), TOTAL.div_ceil(bulkflow_sim::DEFAULT_MAX_PAGE_RECORDS));

    // Refetch a page in the middle by its locator: byte-identical.
    let (mid_locator, mid_digest) = pages[pages.len() / 2].clone();
    let mid_locator = mid_locator.unwrap();
    let again = org.results(&id, &[("locator", &mid_locator)]).await;
    assert_eq!(digest(&again.bytes().await.unwrap()), mid_digest);
    let stats = org.sim.stats();
    let per_locator = &stats.requests_per_locator[&id];
    assert_eq!(per_locator[&mid_locator], 2, "the refetched page twice");
    assert!(per_locator.iter().filter(|(l, _)| **l != mid_locator).all(|(_, n)| *n == 1), "every other page once");
    assert_eq!(per_locator.len(), pages.len());
    eprintln!(
        "1M records: generate {generated:?}, query {:?}, page {:?} ({} pages, {} MB)",
        queried - generated,
        paged - queried,
        pages.len(),
        bytes / 1_000_000
    );
}
