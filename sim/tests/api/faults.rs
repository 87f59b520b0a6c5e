use std::time::{Duration, Instant};

use bulkflow_sim::FaultConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Org, assert_error, config, header};

#[tokio::test]
async fn a_5xx_burst_fails_exactly_n_requests() {
    let org = Org::start(config(1)).await;
    let resp = org.set_faults(json!({"error_5xx": 2, "error_5xx_status": 500})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    for _ in 0..2 {
        let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
        assert_error(resp, StatusCode::INTERNAL_SERVER_ERROR, "SERVER_UNAVAILABLE").await;
    }
    let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let stats = org.admin("/__sim/stats").await;
    assert_eq!(stats["requests"]["job_list"], 3);
    assert_eq!(stats["faults_injected"]["error_5xx"], 2);
    assert_eq!(org.admin("/__sim/faults").await["error_5xx"], 0, "the burst counted down");
}

#[tokio::test]
async fn request_limit_exceeded_on_chosen_endpoints_only() {
    let org = Org::start(config(1)).await;
    org.set_faults(json!({"request_limit": 1, "endpoints": ["job_create"]})).await;
    let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "other endpoints are untouched");
    let resp = org.create(json!({"operation": "query", "query": "SELECT Id FROM Account"})).await;
    let message = assert_error(resp, StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED").await;
    assert_eq!(message, "TotalRequests Limit exceeded.");
    org.create_ok("SELECT Id FROM Account").await;
}

#[tokio::test]
async fn the_token_endpoint_is_faulted_only_when_named() {
    let org = Org::start(config(1)).await;
    org.set_faults(json!({"error_5xx": 1})).await;
    crate::common::login(&org.http, &org.sim).await;
    org.set_faults(json!({"error_5xx": 1, "endpoints": ["oauth_token"]})).await;
    let c = org.sim.credentials();
    let resp = org
        .http
        .post(org.url("/services/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &c.client_id), ("client_secret", &c.client_secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn latency_delays_requests() {
    let org = Org::start(config(1)).await;
    org.sim.set_faults(FaultConfig { latency_ms: 300, ..FaultConfig::default() });
    let started = Instant::now();
    let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_results_body_cut_midway_then_refetched() {
    let org = Org::start(config(2000)).await;
    let id = org.create_ok("SELECT Id, Name FROM Account").await;
    org.wait(&id).await;
    org.set_faults(json!({"cut_results": 1, "cut_after_bytes": 10000})).await;
    let mut resp = org.results(&id, &[]).await;
    assert_eq!(resp.status(), StatusCode::OK, "the cut comes after the headers");
    let mut received = 0;
    let outcome = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(outcome.is_err(), "the body must end in an error, not a clean end");
    assert_eq!(received, 10000);
    // The same page again, whole this time.
    let again = org.results(&id, &[]).await;
    assert_eq!(header(&again, "Sforce-NumberOfRecords"), "2000");
    let body = again.text().await.unwrap();
    assert!(body.len() > 10000);
    let stats = org.admin("/__sim/stats").await;
    assert_eq!(stats["requests_per_locator"][&id]["(first)"], 2);
    assert_eq!(stats["faults_injected"]["cut_results"], 1);
}

#[tokio::test]
async fn jobs_can_be_made_to_fail_with_or_without_a_message() {
    let org = Org::start(config(3)).await;
    org.set_faults(json!({"fail_jobs": 1, "failed_job_message": "QUERY_TIMEOUT"})).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    let job = org.wait(&id).await;
    assert_eq!(job["state"], "Failed");
    assert_eq!(job["errorMessage"], "QUERY_TIMEOUT");
    assert_eq!(job["numberRecordsProcessed"], 0);
    assert_error(org.results(&id, &[]).await, StatusCode::BAD_REQUEST, "INVALIDJOBSTATE").await;

    org.set_faults(json!({"fail_jobs": 1})).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    let job = org.wait(&id).await;
    assert_eq!(job["state"], "Failed");
    assert!(job.get("errorMessage").is_none());

    // Failed jobs are terminal: deletable.
    let resp = org.http.delete(format!("{}/{id}", org.jobs_url())).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let next = org.create_ok("SELECT Id FROM Account").await;
    assert_eq!(org.wait(&next).await["state"], "JobComplete", "only N jobs fail");
}

#[tokio::test]
async fn error_bodies_can_be_html() {
    let org = Org::start(config(1)).await;
    org.set_faults(json!({"non_json_errors": true, "error_5xx": 1})).await;
    let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(header(&resp, "Content-Type").starts_with("text/html"));
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("<html>"));
    assert!(serde_json::from_str::<Value>(&body).is_err());
    let resp = org.get_job("750Sm00000AAAAAAAA").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(header(&resp, "Content-Type").starts_with("text/html"));
    // Successes stay as they are.
    let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<Value>().await.unwrap();
}

#[tokio::test]
async fn faults_set_by_config_and_rejected_when_unknown() {
    let org = Org::start(config(1).faults(FaultConfig { error_5xx: 1, ..FaultConfig::default() })).await;
    let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let resp = org.set_faults(json!({"error_500": 3})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("unknown field"));
    let current: FaultConfig = serde_json::from_value(org.admin("/__sim/faults").await).unwrap();
    assert_eq!(current, FaultConfig::default());
}

#[tokio::test]
async fn stats_count_requests_and_reset() {
    let org = Org::start(config(4)).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    org.wait(&id).await;
    let stats = org.admin("/__sim/stats").await;
    assert_eq!(stats["requests"]["oauth_token"], 1);
    assert_eq!(stats["requests"]["job_create"], 1);
    assert!(stats["requests"]["job_get"].as_u64().unwrap() >= 1);
    let resp = org.http.post(org.url("/__sim/stats/reset")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let stats = org.admin("/__sim/stats").await;
    assert_eq!(stats["requests"], json!({}));
    assert_eq!(stats["records"]["Account"], 4, "records are the data's, not a counter");
    let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
    assert!(header(&resp, "Sforce-Limit-Info").starts_with("api-usage="));
}

/// `/__sim/changes` changes the org at once; `/__sim/query` shows what it holds, without a job.
#[tokio::test]
async fn admin_changes_and_queries_the_org_directly() {
    let org = Org::start(config(20)).await;
    let query = |soql: &'static str| {
        let http = org.http.clone();
        let url = org.url("/__sim/query");
        async move { http.post(url).body(soql).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let before = query("SELECT Id, LastModifiedDate FROM Account").await;
    assert_eq!(before.as_array().unwrap().len(), 20);
    let resp =
        org.http.post(org.url("/__sim/changes")).json(&json!({"modifications": 6, "inserts": 3})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let at: chrono::DateTime<chrono::Utc> =
        resp.json::<Value>().await.unwrap()["applied_at"].as_str().unwrap().parse().unwrap();
    let after = query("SELECT Id, LastModifiedDate FROM Account").await;
    let rows = after.as_array().unwrap();
    assert!(rows.len() > 20, "inserts add accounts: {}", rows.len());
    let changed = rows
        .iter()
        .filter(|r| {
            r[1].as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .is_ok_and(|t| t >= at - chrono::Duration::seconds(1))
        })
        .count();
    assert!(changed >= 1, "some accounts are stamped with the change time");
    let resp = org.http.post(org.url("/__sim/query")).body("SELECT Nope FROM Account").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = org.http.post(org.url("/__sim/changes")).json(&json!({"modify": 1})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
