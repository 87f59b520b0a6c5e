use std::time::Instant;

use reqwest::StatusCode;

use crate::common::{Org, config, header};

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

#[tokio::test]
async fn a_million_records_page_through_stable_locators() {
    const TOTAL: usize = 1_000_000;
    let started = Instant::now();
    let org = Org::start(config(TOTAL)).await;
    let generated = started.elapsed();
    let id = org
        .create_ok("SELECT Id, Name, LastModifiedDate FROM Account")
        .await;
    org.wait(&id).await;
    let queried = started.elapsed();

    let mut locator: Option<String> = None;
    let mut seen = 0;
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
        pages.push((locator.clone(), body.len()));
        if next == "null" {
            break;
        }
        locator = Some(next);
    }
    let paged = started.elapsed();
    assert_eq!(seen, TOTAL);
    assert_eq!(
        pages.len(),
        TOTAL.div_ceil(bulkflow_sim::DEFAULT_MAX_PAGE_RECORDS)
    );

    // Refetch a page in the middle by its locator: same size, same rows.
    let (mid_locator, mid_len) = pages[pages.len() / 2].clone();
    let again = org
        .results(&id, &[("locator", mid_locator.as_deref().unwrap())])
        .await;
    assert_eq!(again.bytes().await.unwrap().len(), mid_len);
    let stats = org.sim.stats();
    let per_locator = &stats.requests_per_locator[&id];
    assert_eq!(per_locator[mid_locator.as_deref().unwrap()], 2);
    assert_eq!(per_locator.values().sum::<u64>() as usize, pages.len() + 1);
    eprintln!(
        "1M records: generate {generated:?}, query {:?}, page {:?} ({} pages)",
        queried - generated,
        paged - queried,
        pages.len()
    );
}
