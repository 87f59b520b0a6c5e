use std::io::Read;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Org, V, assert_error, config, header, parse_csv};

/// Pages through a job with `maxRecords`, returning each page's body and the locators used.
async fn page_all(org: &Org, id: &str, max: &str) -> (Vec<String>, Vec<Option<String>>) {
    let mut bodies = Vec::new();
    let mut locators: Vec<Option<String>> = vec![None];
    loop {
        let locator = locators.last().unwrap().clone();
        let mut q = vec![("maxRecords", max)];
        if let Some(l) = &locator {
            q.push(("locator", l));
        }
        let resp = org.results(id, &q).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "Content-Type"), "text/csv");
        let next = header(&resp, "Sforce-Locator").to_string();
        let count: usize = header(&resp, "Sforce-NumberOfRecords").parse().unwrap();
        let body = resp.text().await.unwrap();
        assert_eq!(parse_csv(&body, ',', "\n").len(), count + 1, "header row plus the counted rows");
        bodies.push(body);
        if next == "null" {
            return (bodies, locators);
        }
        locators.push(Some(next));
    }
}

#[tokio::test]
async fn pages_have_headers_locators_and_counts() {
    let org = Org::start(config(25)).await;
    let id = org.create_ok("SELECT Id, Name, LastModifiedDate FROM Account").await;
    org.wait(&id).await;
    let (bodies, locators) = page_all(&org, &id, "10").await;
    assert_eq!(bodies.len(), 3);
    let mut ids = Vec::new();
    for body in &bodies {
        let rows = parse_csv(body, ',', "\n");
        assert_eq!(rows[0], ["Id", "Name", "LastModifiedDate"], "every page starts with the header");
        assert!(body.starts_with("\"Id\",\"Name\",\"LastModifiedDate\"\n"), "header names are quoted");
        ids.extend(rows[1..].iter().map(|r| r[0].clone()));
    }
    assert_eq!(ids.len(), 25);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 25, "no row twice");

    // A page fetched again by its locator is byte-identical.
    let again = org.results(&id, &[("maxRecords", "10"), ("locator", locators[1].as_deref().unwrap())]).await;
    assert_eq!(again.text().await.unwrap(), bodies[1]);
    let stats = org.admin("/__sim/stats").await;
    let per_locator = &stats["requests_per_locator"][&id];
    assert_eq!(per_locator["(first)"], 1);
    assert_eq!(per_locator[locators[1].as_deref().unwrap()], 2);
    assert_eq!(per_locator[locators[2].as_deref().unwrap()], 1);
    assert_eq!(stats["pages_served"][&id], 4);
    assert_eq!(stats["requests"]["job_results"], 4);
}

#[tokio::test]
async fn default_page_size_caps_pages_and_max_records() {
    let org = Org::start(config(7).max_page_records(3)).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    org.wait(&id).await;
    let resp = org.results(&id, &[]).await;
    assert_eq!(header(&resp, "Sforce-NumberOfRecords"), "3");
    let resp = org.results(&id, &[("maxRecords", "100")]).await;
    assert_eq!(header(&resp, "Sforce-NumberOfRecords"), "3", "maxRecords above the cap is capped");
    let resp = org.results(&id, &[("maxRecords", "2")]).await;
    assert_eq!(header(&resp, "Sforce-NumberOfRecords"), "2");
}

#[tokio::test]
async fn empty_results_are_one_header_only_page() {
    let org = Org::start(config(0)).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    org.wait(&id).await;
    let resp = org.results(&id, &[]).await;
    assert_eq!(header(&resp, "Sforce-NumberOfRecords"), "0");
    assert_eq!(header(&resp, "Sforce-Locator"), "null");
    assert_eq!(resp.text().await.unwrap(), "\"Id\"\n");
}

#[tokio::test]
async fn every_delimiter_and_line_ending() {
    let org = Org::start(config(20)).await;
    let delimiters =
        [("COMMA", ','), ("TAB", '\t'), ("PIPE", '|'), ("SEMICOLON", ';'), ("CARET", '^'), ("BACKQUOTE", '`')];
    let mut reference: Option<Vec<Vec<String>>> = None;
    for (name, delimiter) in delimiters {
        for (le_name, le) in [("LF", "\n"), ("CRLF", "\r\n")] {
            let resp = org
                .create(json!({"operation": "query", "query": "SELECT Id, Name, LastModifiedDate FROM Account", "columnDelimiter": name, "lineEnding": le_name}))
                .await;
            let id = resp.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
            org.wait(&id).await;
            let body = org.results(&id, &[]).await.text().await.unwrap();
            let header_line = format!("\"Id\"{delimiter}\"Name\"{delimiter}\"LastModifiedDate\"{le}");
            assert!(body.starts_with(&header_line), "{name}/{le_name}: {body:?}");
            if le_name == "LF" {
                assert!(!body.contains('\r'), "no CR with LF endings");
            }
            let rows = parse_csv(&body, delimiter, le);
            assert_eq!(rows.len(), 21);
            match &reference {
                None => reference = Some(rows),
                Some(r) => assert_eq!(&rows, r, "{name}/{le_name} carries the same values"),
            }
        }
    }
}

#[tokio::test]
async fn gzip_when_asked() {
    let org = Org::start(config(200)).await;
    let id = org.create_ok("SELECT Id, Name FROM Account").await;
    org.wait(&id).await;
    let plain = org.results(&id, &[]).await;
    assert!(plain.headers().get("Content-Encoding").is_none());
    let plain = plain.bytes().await.unwrap();

    let resp = org
        .http
        .get(format!("{}/{id}/results", org.jobs_url()))
        .bearer_auth(&org.token)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "Content-Encoding"), "gzip");
    assert_eq!(header(&resp, "Sforce-NumberOfRecords"), "200");
    let compressed = resp.bytes().await.unwrap();
    assert!(compressed.len() < plain.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, plain);
}

#[tokio::test]
async fn results_errors() {
    let org = Org::start(config(5).job_latency(std::time::Duration::from_secs(30))).await;
    let pending = org.create_ok("SELECT Id FROM Account").await;
    assert_error(org.results(&pending, &[]).await, StatusCode::BAD_REQUEST, "INVALIDJOBSTATE").await;

    let org = Org::start(config(5)).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    org.wait(&id).await;
    // Another API version than the job's: 409.
    let resp = org
        .http
        .get(org.url(&format!("/services/data/v62.0/jobs/query/{id}/results")))
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::CONFLICT, "API_VERSION_MISMATCH").await;
    for bad in ["0", "-1", "ten"] {
        assert_error(org.results(&id, &[("maxRecords", bad)]).await, StatusCode::BAD_REQUEST, "INVALIDREQUEST").await;
    }
    // Not base64 of an offset; and an offset past the end.
    for bad in ["!!", "bm9wZQ", "OTk5"] {
        assert_error(org.results(&id, &[("locator", bad)]).await, StatusCode::BAD_REQUEST, "INVALID_LOCATOR").await;
    }
    // The job's own version works; the session is needed.
    assert_eq!(org.results(&id, &[]).await.status(), StatusCode::OK);
    let resp =
        org.http.get(format!("{}/services/data/{V}/jobs/query/{id}/results", org.sim.url())).send().await.unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID").await;
}

#[tokio::test]
async fn same_seed_gives_byte_identical_pages() {
    let mut pages = Vec::new();
    for _ in 0..2 {
        let org = Org::start(config(500).seed(42)).await;
        let id = org.create_ok("SELECT Id, Name, LastModifiedDate FROM Account").await;
        org.wait(&id).await;
        pages.push(page_all(&org, &id, "200").await.0);
    }
    assert_eq!(pages[0].len(), 3);
    assert_eq!(pages[0], pages[1]);
}

/// The seed's first 24-hour window covers every generated record of every object.
#[tokio::test]
async fn a_window_query_per_object_covers_all_records() {
    let start = crate::common::fixed_start();
    let org = Org::start(config(40).records([("Account", 40), ("Contact", 30), ("Opportunity", 20)])).await;
    let from = (start - chrono::Duration::hours(24)).format("%Y-%m-%dT%H:%M:%SZ");
    for (object, count) in [("Account", 40), ("Contact", 30), ("Opportunity", 20)] {
        let soql = format!(
            "SELECT Id, Name, LastModifiedDate FROM {object} WHERE LastModifiedDate >= {from} ORDER BY LastModifiedDate ASC"
        );
        let id = org.create_ok(&soql).await;
        let job = org.wait(&id).await;
        assert_eq!(job["object"], object);
        assert_eq!(job["numberRecordsProcessed"], count);
        let body = org.results(&id, &[]).await.text().await.unwrap();
        let rows = parse_csv(&body, ',', "\n");
        assert_eq!(rows.len(), count + 1);
        assert!(rows[1..].iter().all(|r| r[2].ends_with(".000Z")), "datetimes as ISO with millis and Z");
    }
    let stats = org.admin("/__sim/stats").await;
    assert_eq!(stats["jobs_created"], json!({"Account": 1, "Contact": 1, "Opportunity": 1}));
}
