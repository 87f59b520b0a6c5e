use std::time::Duration;

use bulkflow_sim::JobState;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Org, assert_error, config};

fn is_job_date(v: &Value) -> bool {
    // 2018-12-10T17:50:19.000+0000
    let s = v.as_str().unwrap_or_default();
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").is_ok() && s.ends_with(".000+0000") && s.len() == 28
}

#[tokio::test]
async fn create_answers_the_documented_job_info() {
    let org = Org::start(config(5)).await;
    let resp = org
        .create(json!({"operation": "queryAll", "query": "SELECT Id, Name FROM Account", "contentType": "CSV", "columnDelimiter": "PIPE", "lineEnding": "CRLF"}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let job: Value = resp.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("750"));
    assert_eq!(job["operation"], "queryAll");
    assert_eq!(job["object"], "Account");
    assert!(job["createdById"].as_str().unwrap().starts_with("005"));
    assert!(is_job_date(&job["createdDate"]), "{}", job["createdDate"]);
    assert!(is_job_date(&job["systemModstamp"]));
    assert_eq!(job["state"], "UploadComplete");
    assert_eq!(job["concurrencyMode"], "Parallel");
    assert_eq!(job["contentType"], "CSV");
    assert!(job["apiVersion"].is_f64(), "apiVersion is a JSON number");
    assert_eq!(job["apiVersion"].as_f64(), Some(63.0));
    assert_eq!(job["lineEnding"], "CRLF");
    assert_eq!(job["columnDelimiter"], "PIPE");

    let info: Value = org.wait(id).await;
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["jobType"], "V2Query");
    assert_eq!(info["numberRecordsProcessed"], 5);
    assert_eq!(info["retries"], 0);
    assert!(info["totalProcessingTime"].is_u64());
    assert_eq!(info["isPkChunkingSupported"], true);
    assert!(info.get("errorMessage").is_none());
    assert!(info.get("numberRecordsFailed").is_none(), "query jobs carry no ingest fields");
    let stats = org.admin("/__sim/stats").await;
    assert_eq!(stats["jobs_created"]["Account"], 1);
    assert_eq!(stats["records"]["Account"], 5);
}

#[tokio::test]
async fn jobs_move_through_their_states_on_schedule_and_announce_it() {
    let org = Org::start(config(3).job_latency(Duration::from_millis(2400))).await;
    let mut events = org.sim.job_events();
    let id = org.create_ok("SELECT Id FROM Account").await;
    let state = |v: Value| v["state"].as_str().unwrap().to_string();
    assert_eq!(state(org.get_job(&id).await.json().await.unwrap()), "UploadComplete");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state(org.get_job(&id).await.json().await.unwrap()), "InProgress");
    let done = org.wait(&id).await;
    assert_eq!(done["state"], "JobComplete");

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        assert_eq!(event.job_id, id);
        assert_eq!(event.api_version, "63.0");
        assert_eq!(event.object, "Account");
        seen.push(event.state);
    }
    assert_eq!(seen, [JobState::UploadComplete, JobState::InProgress, JobState::JobComplete]);
}

#[tokio::test]
async fn create_errors() {
    let org = Org::start(config(1)).await;
    let post_raw = |body: &'static str| {
        org.http
            .post(org.jobs_url())
            .bearer_auth(&org.token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    assert_error(post_raw("{not json").await.unwrap(), StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR").await;
    for bad in [
        json!({"operation": "insert", "query": "SELECT Id FROM Account"}),
        json!({"operation": "query", "query": "SELECT Id FROM Account", "columnDelimiter": "COLON"}),
        json!({"operation": "query", "query": "SELECT Id FROM Account", "lineEnding": "CR"}),
        json!({"operation": "query", "query": "SELECT Id FROM Account", "contentType": "JSON"}),
        json!({"operation": "query", "query": "SELECT Id FROM Account", "surprise": 1}),
    ] {
        assert_error(org.create(bad).await, StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR").await;
    }
    assert_error(org.create(json!({"query": "SELECT Id FROM Account"})).await, StatusCode::BAD_REQUEST, "INVALIDJOB")
        .await;
    assert_error(org.create(json!({"operation": "query"})).await, StatusCode::BAD_REQUEST, "INVALIDJOB").await;
    assert_error(
        org.create(json!({"operation": "query", "query": "SELEKT Id FROM Account"})).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_QUERY",
    )
    .await;
    assert_error(
        org.create(json!({"operation": "query", "query": "SELECT Nope FROM Account"})).await,
        StatusCode::BAD_REQUEST,
        "INVALID_FIELD",
    )
    .await;

    // Versions before Bulk API 2.0 query jobs, or not versions at all, are paths that do not exist.
    for version in ["v46.0", "63.0", "vfoo"] {
        let resp = org
            .http
            .post(org.url(&format!("/services/data/{version}/jobs/query")))
            .bearer_auth(&org.token)
            .json(&json!({"operation": "query", "query": "SELECT Id FROM Account"}))
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    assert_eq!(org.admin("/__sim/stats").await["jobs_created"], json!({}));
}

#[tokio::test]
async fn unknown_jobs_and_paths_are_not_found() {
    let org = Org::start(config(1)).await;
    let message = assert_error(org.get_job("750Sm00000AAAAAAAA").await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(message, "The requested resource does not exist");
    assert_error(org.results("750Sm00000AAAAAAAA", &[]).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    // jsforce's double-slash bug (forcedotcom/cli#2968) hits a 404, as on the real API.
    let id = org.create_ok("SELECT Id FROM Account").await;
    let resp = org.http.get(format!("{}//{id}/results", org.jobs_url())).bearer_auth(&org.token).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let resp = org.http.put(format!("{}/{id}", org.jobs_url())).bearer_auth(&org.token).send().await.unwrap();
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn list_pages_through_jobs() {
    let org = Org::start(config(1).list_page_size(2)).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(org.create_ok("SELECT Id FROM Account").await);
    }
    let mut seen = Vec::new();
    let mut url = org.jobs_url();
    let mut pages = 0;
    loop {
        let page: Value = org.http.get(&url).bearer_auth(&org.token).send().await.unwrap().json().await.unwrap();
        pages += 1;
        for job in page["records"].as_array().unwrap() {
            assert_eq!(job["jobType"], "V2Query");
            seen.push(job["id"].as_str().unwrap().to_string());
        }
        if page["done"] == true {
            assert!(page["nextRecordsUrl"].is_null());
            break;
        }
        url = org.url(page["nextRecordsUrl"].as_str().unwrap());
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every job once, oldest first");

    let none: Value = org
        .http
        .get(org.jobs_url())
        .query(&[("jobType", "V2Ingest")])
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["records"], json!([]));
    assert_eq!(none["done"], true);
    let bad =
        org.http.get(org.jobs_url()).query(&[("queryLocator", "%%%")]).bearer_auth(&org.token).send().await.unwrap();
    assert_error(bad, StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR").await;
}

#[tokio::test]
async fn abort_and_delete_follow_the_state_rules() {
    let org = Org::start(config(2).job_latency(Duration::from_secs(30))).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    let job_url = format!("{}/{id}", org.jobs_url());

    let resp = org.http.delete(&job_url).bearer_auth(&org.token).send().await.unwrap();
    let message = assert_error(resp, StatusCode::BAD_REQUEST, "API_ERROR").await;
    assert_eq!(message, "Error encountered when deleting the job because the job is not terminated");

    let resp =
        org.http.patch(&job_url).bearer_auth(&org.token).json(&json!({"state": "JobComplete"})).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALIDJOBSTATE").await;

    let resp =
        org.http.patch(&job_url).bearer_auth(&org.token).json(&json!({"state": "Aborted"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let job: Value = resp.json().await.unwrap();
    assert_eq!(job["state"], "Aborted");
    assert_eq!(job["id"], id);

    let resp =
        org.http.patch(&job_url).bearer_auth(&org.token).json(&json!({"state": "Aborted"})).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALIDJOBSTATE").await;
    assert_error(org.results(&id, &[]).await, StatusCode::BAD_REQUEST, "INVALIDJOBSTATE").await;

    let resp = org.http.delete(&job_url).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_error(org.get_job(&id).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let resp = org.http.delete(&job_url).bearer_auth(&org.token).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[tokio::test]
async fn completed_jobs_cannot_be_aborted_but_can_be_deleted() {
    let org = Org::start(config(2)).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    org.wait(&id).await;
    let job_url = format!("{}/{id}", org.jobs_url());
    let resp =
        org.http.patch(&job_url).bearer_auth(&org.token).json(&json!({"state": "Aborted"})).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALIDJOBSTATE").await;
    let resp = org.http.delete(&job_url).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn results_expire_after_retention() {
    let org = Org::start(config(2).retention(Duration::from_millis(300))).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    org.wait(&id).await;
    assert_eq!(org.results(&id, &[]).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_error(org.results(&id, &[]).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_error(org.get_job(&id).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}
