//! Helpers shared by the simulator's tests: a plain HTTP client (reqwest), not the project's
//! Salesforce client, so these tests check the wire format itself.

use std::time::{Duration, Instant};

use bulkflow_sim::{SimConfig, Simulator};
use chrono::{TimeZone, Utc};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub const V: &str = "v63.0";

/// A fixed start, so results are byte-identical between runs.
pub fn fixed_start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

pub fn config(accounts: usize) -> SimConfig {
    SimConfig::new().records([("Account", accounts)]).start_time(fixed_start()).job_latency(Duration::from_millis(50))
}

pub struct Org {
    pub sim: Simulator,
    pub http: Client,
    pub token: String,
}

impl Org {
    pub async fn start(config: SimConfig) -> Org {
        let sim = Simulator::start(config).await.expect("simulator starts");
        // Plain bytes as the server sent them: when the workspace enables reqwest's gzip feature
        // (the engine's client uses it), a default client would inflate bodies behind our back.
        let http = Client::builder().no_gzip().build().unwrap();
        let token = login(&http, &sim).await;
        Org { sim, http, token }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url())
    }

    pub fn jobs_url(&self) -> String {
        self.url(&format!("/services/data/{V}/jobs/query"))
    }

    pub async fn create(&self, body: Value) -> Response {
        self.http.post(self.jobs_url()).bearer_auth(&self.token).json(&body).send().await.unwrap()
    }

    /// Creates a job and returns its id, asserting success.
    pub async fn create_ok(&self, soql: &str) -> String {
        let resp = self.create(json!({"operation": "query", "query": soql})).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }

    pub async fn get_job(&self, id: &str) -> Response {
        self.http.get(format!("{}/{id}", self.jobs_url())).bearer_auth(&self.token).send().await.unwrap()
    }

    /// Polls until the job is terminal; returns its final JSON.
    pub async fn wait(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let job: Value = self.get_job(id).await.json().await.unwrap();
            let state = job["state"].as_str().unwrap().to_string();
            if ["JobComplete", "Failed", "Aborted"].contains(&state.as_str()) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} stuck in {state}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn results(&self, id: &str, query: &[(&str, &str)]) -> Response {
        self.http
            .get(format!("{}/{id}/results", self.jobs_url()))
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin(&self, path: &str) -> Value {
        self.http.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn set_faults(&self, faults: Value) -> Response {
        self.http.post(self.url("/__sim/faults")).json(&faults).send().await.unwrap()
    }
}

pub async fn login(http: &Client, sim: &Simulator) -> String {
    let c = sim.credentials();
    let resp = http
        .post(format!("{}/services/oauth2/token", sim.url()))
        .form(&[("grant_type", "client_credentials"), ("client_id", &c.client_id), ("client_secret", &c.client_secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
}

/// Asserts a REST error: the status and the JSON array `[{"errorCode","message"}]`.
pub async fn assert_error(resp: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.expect("error body is JSON");
    let errors = body.as_array().expect("error body is an array");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["errorCode"], code, "{body}");
    errors[0]["message"].as_str().expect("message is a string").to_string()
}

pub fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers().get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

/// Splits CSV into records with an RFC-4180 reader (quoted fields may hold delimiters, quotes and
/// newlines), never line by line.
pub fn parse_csv(text: &str, delimiter: char, line_ending: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let first_le = line_ending.chars().next().unwrap();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' {
            in_quotes = true;
        } else if c == delimiter {
            row.push(std::mem::take(&mut field));
        } else if c == first_le {
            if line_ending == "\r\n" {
                assert_eq!(chars.next(), Some('\n'), "CR outside quotes not followed by LF");
            }
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        } else {
            field.push(c);
        }
    }
    assert!(!in_quotes, "unterminated quote");
    assert!(field.is_empty() && row.is_empty(), "last record not terminated by the line ending");
    rows
}
