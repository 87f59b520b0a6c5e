use std::time::Duration;

use bulkflow_sim::Simulator;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Org, config, header};

#[tokio::test]
async fn a_restarted_simulator_is_the_same_org() {
    let dir = tempfile::tempdir().unwrap();
    let org = Org::start(config(30).state_dir(dir.path())).await;
    let id = org.create_ok("SELECT Id, Name FROM Account").await;
    org.wait(&id).await;
    let first = org.results(&id, &[("maxRecords", "10")]).await;
    let locator = header(&first, "Sforce-Locator").to_string();
    let second_page = org.results(&id, &[("maxRecords", "10"), ("locator", &locator)]).await.text().await.unwrap();
    let (org_id, creds, token) = (org.sim.org_id().to_string(), org.sim.credentials().clone(), org.token.clone());
    org.sim.shutdown().await.unwrap();

    // Different flags on restart: the stored org wins.
    let sim = Simulator::start(config(5).seed(99).state_dir(dir.path())).await.unwrap();
    assert_eq!(sim.org_id(), org_id);
    assert_eq!(sim.credentials().client_secret, creds.client_secret);
    assert_eq!(sim.credentials().private_key_pem, creds.private_key_pem);
    assert!(sim.replay_dir().unwrap().is_dir(), "a place for the Pub/Sub replay log");
    let http = reqwest::Client::new();
    let jobs_url = format!("{}/services/data/v63.0/jobs/query", sim.url());
    // The old token still works, the job is there, and the page by the old locator is the same.
    let job: Value =
        http.get(format!("{jobs_url}/{id}")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(job["state"], "JobComplete");
    assert_eq!(job["numberRecordsProcessed"], 30);
    let again = http
        .get(format!("{jobs_url}/{id}/results"))
        .query(&[("maxRecords", "10"), ("locator", locator.as_str())])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.text().await.unwrap(), second_page);
    assert_eq!(sim.stats().records["Account"], 30);
}

#[tokio::test]
async fn without_state_nothing_survives() {
    let org = Org::start(config(3)).await;
    let token = org.token.clone();
    let url = org.sim.url().to_string();
    org.sim.shutdown().await.unwrap();
    let sim = Simulator::start(config(3)).await.unwrap();
    assert_ne!(sim.url(), url);
    let resp = reqwest::Client::new()
        .get(format!("{}/services/data/v63.0/jobs/query", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn change_rate_changes_the_data_and_replays_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(config(10).change_rate(3.0).state_dir(dir.path())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let grown = sim.stats().records["Account"];
    assert!(grown >= 13, "3 inserts a second (at least one tick) on top of 10, got {grown}");
    sim.shutdown().await.unwrap();
    let sim = Simulator::start(config(10).state_dir(dir.path())).await.unwrap();
    assert_eq!(sim.stats().records["Account"], grown, "the logged changes are replayed");

    let still = Simulator::start(config(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(still.stats().records["Account"], 10, "change rate 0: the data does not change");
}

#[tokio::test]
async fn unknown_objects_are_refused_at_start() {
    let err = Simulator::start(config(1).records([("Widget", 3)])).await.err().expect("refused");
    assert!(err.to_string().contains("Widget"), "{err}");
}

#[tokio::test]
async fn a_job_in_flight_finishes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let slow = || config(12).job_latency(Duration::from_millis(1500)).state_dir(dir.path());
    let org = Org::start(slow()).await;
    let id = org.create_ok("SELECT Id FROM Account").await;
    let token = org.token.clone();
    // Stopped the moment the create answers: a job the org acknowledged has its results stored
    // (a process killed with the org in it must not turn its jobs into `Failed`).
    org.sim.shutdown().await.unwrap();

    let sim = Simulator::start(slow()).await.unwrap();
    let http = reqwest::Client::new();
    let job_url = format!("{}/services/data/v63.0/jobs/query/{id}", sim.url());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let job = loop {
        let job: Value = http.get(&job_url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if job["state"] == "JobComplete" || job["state"] == "Failed" {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "{job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["state"], "JobComplete");
    let page = http.get(format!("{job_url}/results")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(header(&page, "Sforce-NumberOfRecords"), "12");
}

#[tokio::test]
async fn a_job_keeps_its_snapshot_while_the_data_changes() {
    let org = Org::start(config(50).change_rate(20.0)).await;
    let id = org.create_ok("SELECT Id, Name, LastModifiedDate FROM Account").await;
    let job = org.wait(&id).await;
    let count = job["numberRecordsProcessed"].as_u64().unwrap();
    let first = org.results(&id, &[]).await.text().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(org.sim.stats().records["Account"] > 50, "the data moved on");
    let again = org.results(&id, &[]).await;
    assert_eq!(header(&again, "Sforce-NumberOfRecords"), count.to_string());
    assert_eq!(again.text().await.unwrap(), first);
    // A new job sees the new data.
    let newer = org.create_ok("SELECT Id FROM Account").await;
    assert!(org.wait(&newer).await["numberRecordsProcessed"].as_u64().unwrap() > count);
}

/// The bodies of the events in a persisted replay log (`replay/events.log`: sequence, time, topic
/// and event, each length-prefixed), up to the first incomplete record.
fn logged_events(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(dir.join("replay/events.log")).unwrap_or_default();
    let mut rest = bytes.as_slice();
    let mut take = |n: usize| -> Option<Vec<u8>> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head.to_vec())
    };
    let mut out = Vec::new();
    while let Some(_seq_and_time) = take(16) {
        let Some(len) = take(4) else { break };
        let Some(_topic) = take(u32::from_be_bytes(len.try_into().unwrap()) as usize) else { break };
        let Some(len) = take(4) else { break };
        let Some(body) = take(u32::from_be_bytes(len.try_into().unwrap()) as usize) else { break };
        out.push(body);
    }
    out
}

/// A job's completion is in the replay log before the org persists the job as complete, so a
/// process killed between the two cannot come back with a `JobComplete` job whose completion
/// event never exists (a client relying on the event would wait for it for ever). Checked by
/// reading both files while jobs complete: whenever `jobs.json` says `JobComplete`, the log,
/// read after it, holds the job's `JobComplete` event (on two threads, so the reads can fall
/// between the org's two writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_completion_always_has_its_event_in_the_replay_log() {
    let dir = tempfile::tempdir().unwrap();
    let org = Org::start(config(3).job_latency(Duration::from_millis(30)).state_dir(dir.path())).await;
    let mut pending = Vec::new();
    for _ in 0..20 {
        pending.push(org.create_ok("SELECT Id FROM Account").await);
    }
    let contains = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !pending.is_empty() {
        assert!(std::time::Instant::now() < deadline, "jobs never completed: {pending:?}");
        let jobs: Vec<Value> = std::fs::read(dir.path().join("jobs.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let events = logged_events(dir.path());
        for job in jobs.iter().filter(|j| j["state"] == "JobComplete") {
            let id = job["id"].as_str().unwrap();
            assert!(
                events.iter().any(|e| contains(e, id) && contains(e, "JobComplete")),
                "job {id} is persisted complete but its completion event is not in the log"
            );
            pending.retain(|p| p != id);
        }
        tokio::task::yield_now().await;
    }
}

/// A job that completed while its org was down completes at the restarted org's first clock tick;
/// its completion event must reach the replay log all the same (the clock used to start before
/// the Pub/Sub server's publisher, and such events were lost: a client waiting for the event
/// waited for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_completed_while_the_org_was_down_has_its_event_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let quick = || config(5).job_latency(Duration::from_millis(300)).state_dir(dir.path());
    let org = Org::start(quick()).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(org.create_ok("SELECT Id FROM Account").await);
    }
    org.sim.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    let sim = Simulator::start(quick()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let contains = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    for id in &ids {
        while !logged_events(dir.path()).iter().any(|e| contains(e, id) && contains(e, "JobComplete")) {
            assert!(std::time::Instant::now() < deadline, "no completion event for job {id} after the restart");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    sim.shutdown().await.unwrap();
}
