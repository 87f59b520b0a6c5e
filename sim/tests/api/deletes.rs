//! Deletes: the Recycle Bin (`queryAll`, `IsDeleted`), its purge, the REST `deleted` resource, and
//! all of it surviving a restart.

use std::collections::BTreeSet;
use std::time::Duration;

use bulkflow_sim::Simulator;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Org, V, assert_error, config, parse_csv};

impl Org {
    async fn post_admin(&self, path: &str, body: Value) -> Value {
        let resp = self.http.post(self.url(path)).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.unwrap()
    }

    /// The rows of a finished job of `operation` over `soql`, header first.
    async fn rows(&self, operation: &str, soql: &str) -> Vec<Vec<String>> {
        let resp = self.create(json!({"operation": operation, "query": soql})).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        assert_eq!(self.wait(&id).await["state"], "JobComplete");
        parse_csv(&self.results(&id, &[]).await.text().await.unwrap(), ',', "\n")
    }

    async fn deleted(&self, object: &str, start: &str, end: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/services/data/{V}/sobjects/{object}/deleted/")))
            .query(&[("start", start), ("end", end)])
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }
}

fn ids(rows: &[Vec<String>]) -> BTreeSet<String> {
    rows[1..].iter().map(|r| r[0].clone()).collect()
}

fn iso(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn deleted_records_leave_query_stay_in_query_all_until_purged_and_get_deleted_reports_them() {
    let org = Org::start(config(40)).await;
    let before = Utc::now();
    let all = ids(&org.rows("query", "SELECT Id FROM Account").await);
    let answer = org.post_admin("/__sim/delete", json!({"object": "account", "count": 5})).await;
    let deleted: BTreeSet<String> =
        answer["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect();
    assert_eq!(deleted.len(), 5, "{answer}");
    assert!(deleted.is_subset(&all));
    assert_eq!(org.admin("/__sim/stats").await["records"]["Account"], 35, "stats count live records");

    // `query` no longer sees them; `queryAll` does, with IsDeleted true and SystemModstamp moved.
    let live = ids(&org.rows("query", "SELECT Id FROM Account").await);
    assert_eq!(live, all.difference(&deleted).cloned().collect());
    let with_bin = org.rows("queryAll", "SELECT Id, IsDeleted, SystemModstamp FROM Account").await;
    assert_eq!(ids(&with_bin), all);
    for row in &with_bin[1..] {
        let gone = deleted.contains(&row[0]);
        assert_eq!(row[1], if gone { "true" } else { "false" }, "{row:?}");
        if gone {
            let stamp = chrono::DateTime::parse_from_rfc3339(&row[2]).unwrap_or_else(|e| panic!("{row:?}: {e}"));
            assert!(stamp.timestamp() >= before.timestamp(), "a delete moves SystemModstamp: {row:?}");
        }
    }
    let filtered = org.rows("queryAll", "SELECT Id FROM Account WHERE IsDeleted = true").await;
    assert_eq!(ids(&filtered), deleted);
    let since =
        format!("SELECT Id FROM Account WHERE SystemModstamp >= {}", iso(before - chrono::Duration::seconds(1)));
    assert_eq!(ids(&org.rows("queryAll", &since).await), deleted, "a SystemModstamp window catches deletes");

    // A purge (hard delete): gone from queryAll too; get-deleted still reports every delete.
    let more = org.post_admin("/__sim/delete", json!({"object": "Account", "count": 3})).await;
    let purged: BTreeSet<String> =
        more["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect();
    org.post_admin("/__sim/purge", json!({"object": "Account"})).await;
    assert_eq!(ids(&org.rows("queryAll", "SELECT Id FROM Account WHERE IsDeleted = true").await), BTreeSet::new());
    let start = iso(before - chrono::Duration::minutes(5));
    let end = iso(Utc::now() + chrono::Duration::minutes(2));
    let resp = org.deleted("Account", &start, &end).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let reported: BTreeSet<String> = body["deletedRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["deletedDate"].as_str().unwrap().ends_with(".000+0000"), "{r}");
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(reported, deleted.union(&purged).cloned().collect());
    assert!(body["earliestDateAvailable"].is_string() && body["latestDateCovered"].is_string(), "{body}");
    // Nothing deleted in an earlier window.
    let earlier = org
        .deleted("Account", &iso(before - chrono::Duration::hours(2)), &iso(before - chrono::Duration::hours(1)))
        .await;
    assert_eq!(earlier.json::<Value>().await.unwrap()["deletedRecords"], json!([]));
}

#[tokio::test]
async fn get_deleted_refuses_bad_windows_as_salesforce_does() {
    let org = Org::start(config(5)).await;
    let now = Utc::now();
    let short = org.deleted("Account", &iso(now - chrono::Duration::seconds(50)), &iso(now)).await;
    let message = assert_error(short, StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE").await;
    assert!(message.contains("more than one minute"), "{message}");
    let old = org.deleted("Account", &iso(now - chrono::Duration::days(16)), &iso(now)).await;
    let message = assert_error(old, StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE").await;
    assert!(message.contains("earliest date available"), "{message}");
    let garbled = org.deleted("Account", "yesterday", &iso(now)).await;
    assert_error(garbled, StatusCode::BAD_REQUEST, "INVALID_DATE_FORMAT").await;
    let unknown = org.deleted("Widget", &iso(now - chrono::Duration::hours(1)), &iso(now)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let anonymous = org
        .http
        .get(org.url(&format!("/services/data/{V}/sobjects/Account/deleted/")))
        .query(&[("start", iso(now - chrono::Duration::hours(1))), ("end", iso(now))])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let resp =
        org.http.post(org.url("/__sim/delete")).json(&json!({"object": "Widget", "count": 1})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// `deleted_window` shortens what the resource reports, so a test can reach past it: a start
/// inside it answers with `earliestDateAvailable` that far back, one before it is refused.
#[tokio::test]
async fn a_shorter_deleted_window_moves_the_earliest_date_available() {
    let org = Org::start(config(5).deleted_window(Duration::from_secs(30 * 60))).await;
    let now = Utc::now();
    let inside = org.deleted("Account", &iso(now - chrono::Duration::minutes(20)), &iso(now)).await;
    assert_eq!(inside.status(), StatusCode::OK);
    let body: Value = inside.json().await.unwrap();
    let earliest: chrono::DateTime<Utc> =
        body["earliestDateAvailable"].as_str().unwrap().parse().unwrap_or_else(|_| {
            chrono::DateTime::parse_from_str(body["earliestDateAvailable"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.3f%z")
                .unwrap()
                .with_timezone(&Utc)
        });
    let age = now - earliest;
    assert!(age >= chrono::Duration::minutes(30) && age < chrono::Duration::minutes(32), "{body}");
    let before = org.deleted("Account", &iso(now - chrono::Duration::minutes(40)), &iso(now)).await;
    let message = assert_error(before, StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE").await;
    assert!(message.contains("earliest date available"), "{message}");
}

#[tokio::test]
async fn deletes_and_purges_survive_a_restart_and_the_delete_rate_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let org = Org::start(config(30).state_dir(dir.path())).await;
    let recycled = org.post_admin("/__sim/delete", json!({"object": "Account", "count": 4})).await;
    let purged = org.post_admin("/__sim/delete", json!({"object": "Account", "count": 2})).await;
    org.post_admin("/__sim/purge", json!({"object": "Account"})).await;
    let again = org.post_admin("/__sim/delete", json!({"object": "Account", "count": 3})).await;
    let live_before = org.sim.ids("Account");
    org.sim.shutdown().await.unwrap();

    let org = Org { sim: Simulator::start(config(30).state_dir(dir.path())).await.unwrap(), ..org };
    let token = crate::common::login(&org.http, &org.sim).await;
    let org = Org { token, ..org };
    assert_eq!(org.sim.ids("Account"), live_before);
    let bin = ids(&org.rows("queryAll", "SELECT Id FROM Account WHERE IsDeleted = true").await);
    let expect: BTreeSet<String> =
        again["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect();
    assert_eq!(bin, expect, "only the deletes after the purge are in the bin");
    let _ = (recycled, purged);

    let rate = Org::start(config(50).delete_rate(5.0)).await;
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let live = rate.admin("/__sim/stats").await["records"]["Account"].as_u64().unwrap();
    assert!((35..=45).contains(&live), "5 deletes a second for about 2 s: {live} of 50 left");
}
