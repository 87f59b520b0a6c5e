//! Bulk API 2.0 query jobs: create, get, list, abort, delete. Job info is kept as Salesforce sent
//! it (flows read `event.data.object`, `.id`, `.state`), with the few fields the engine needs
//! read out leniently.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::client::{Capped, SalesforceClient, read_capped};
use super::error::SalesforceError;
use super::options::{ColumnDelimiter, LineEnding, QueryOperation};
use super::settings::bytes;

/// What the engine reads from a job's info.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    pub id: String,
    pub object: String,
    pub state: String,
    pub api_version: String,
    pub column_delimiter: u8,
    pub records_processed: Option<u64>,
    pub error_message: Option<String>,
    pub raw: Value,
}

impl JobInfo {
    pub fn from_json(raw: Value) -> Result<Self, SalesforceError> {
        let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
        let id = s("id").ok_or_else(|| SalesforceError::Config(format!("job info without an id: {raw}")))?;
        // `apiVersion` is a JSON number (63.0); keep one decimal, as URLs spell it.
        let api_version = match raw.get("apiVersion") {
            Some(Value::Number(n)) => n.as_f64().map(|v| format!("{v:.1}")).unwrap_or_default(),
            Some(Value::String(v)) => v.clone(),
            _ => String::new(),
        };
        Ok(Self {
            object: s("object").unwrap_or_default(),
            state: s("state").unwrap_or_default(),
            column_delimiter: delimiter_byte(s("columnDelimiter").as_deref().unwrap_or("COMMA")),
            records_processed: raw.get("numberRecordsProcessed").and_then(Value::as_u64),
            error_message: s("errorMessage").filter(|m| !m.is_empty()),
            api_version,
            id,
            raw,
        })
    }

    pub fn is_complete(&self) -> bool {
        self.state == "JobComplete"
    }

    /// When Salesforce created the job (its clock, whole seconds).
    pub fn created_date(&self) -> Option<DateTime<Utc>> {
        parse_datetime(self.raw.get("createdDate")?.as_str()?)
    }

    /// Turns a terminal failure into its error; `Ok(false)` while the job is still running.
    pub fn check_finished(&self) -> Result<bool, SalesforceError> {
        match self.state.as_str() {
            "JobComplete" => Ok(true),
            "Failed" => Err(SalesforceError::JobFailed {
                job_id: self.id.clone(),
                message: self.error_message.clone().unwrap_or_else(|| "no errorMessage given".into()),
            }),
            "Aborted" => Err(SalesforceError::JobAborted { job_id: self.id.clone() }),
            _ => Ok(false),
        }
    }
}

/// A Salesforce date-time as its APIs write it (`2026-12-07T10:00:03.000+0000`), or RFC 3339
/// (`...Z`, `...+00:00`), which some answers use [unverified which].
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn delimiter_byte(name: &str) -> u8 {
    match name.to_ascii_uppercase().as_str() {
        "TAB" => b'\t',
        "PIPE" => b'|',
        "SEMICOLON" => b';',
        "CARET" => b'^',
        "BACKQUOTE" => b'`',
        _ => b',',
    }
}

pub fn delimiter_name(d: ColumnDelimiter) -> &'static str {
    match d {
        ColumnDelimiter::Comma => "COMMA",
        ColumnDelimiter::Tab => "TAB",
        ColumnDelimiter::Pipe => "PIPE",
        ColumnDelimiter::Semicolon => "SEMICOLON",
        ColumnDelimiter::Caret => "CARET",
        ColumnDelimiter::Backquote => "BACKQUOTE",
    }
}

/// A JSON answer's body, read to at most `max_answer_bytes`.
pub(crate) async fn json_body(
    client: &SalesforceClient,
    what: &str,
    r: reqwest::Response,
) -> Result<Value, SalesforceError> {
    let cap = client.limits().max_answer_bytes;
    let body = match read_capped(r, cap).await {
        Ok(Capped::Whole(body)) => body,
        Ok(Capped::Cut(_)) => {
            return Err(SalesforceError::Protocol {
                what: what.into(),
                reason: format!("the answer is longer than salesforce_max_answer_size ({})", bytes(cap)),
            });
        }
        Err(e) => return Err(SalesforceError::transport(what, e)),
    };
    serde_json::from_slice(&body).map_err(|e| SalesforceError::Garbled {
        what: what.into(),
        reason: format!("not JSON ({e}): {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
    })
}

/// How long one job POST may take. It bounds the window in which the job it made can have been
/// created, so it is part of the adoption rule.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct CreateJob<'a> {
    pub soql: &'a str,
    pub operation: QueryOperation,
    pub column_delimiter: ColumnDelimiter,
    pub line_ending: LineEnding,
}

/// One POST of a new job, bounded by [`CREATE_TIMEOUT`] and
/// never repeated here: a lost answer may hide a job made, so
/// [`create_job`](super::job_create::create_job) looks for it before posting again.
pub async fn post_job(client: &SalesforceClient, job: &CreateJob<'_>) -> Result<JobInfo, SalesforceError> {
    let body = json!({
        "operation": operation_name(job.operation),
        "query": job.soql,
        "contentType": "CSV",
        "columnDelimiter": delimiter_name(job.column_delimiter),
        "lineEnding": line_ending_name(job.line_ending),
    });
    let version = client.api_version().to_string();
    let r = client
        .send_once("create query job", |http, s| {
            http.post(format!("{}/jobs/query", SalesforceClient::data_url(s, &version)))
                .timeout(CREATE_TIMEOUT)
                .json(&body)
        })
        .await?;
    JobInfo::from_json(json_body(client, "create query job", r).await?)
}

pub fn operation_name(operation: QueryOperation) -> &'static str {
    match operation {
        QueryOperation::Query => "query",
        QueryOperation::QueryAll => "queryAll",
    }
}

pub fn line_ending_name(line_ending: LineEnding) -> &'static str {
    match line_ending {
        LineEnding::Lf => "LF",
        LineEnding::Crlf => "CRLF",
    }
}

pub async fn get_job(client: &SalesforceClient, job_id: &str) -> Result<JobInfo, SalesforceError> {
    let version = client.api_version().to_string();
    let what = format!("get job {job_id}");
    let r = client
        .send(&what, |http, s| http.get(format!("{}/jobs/query/{job_id}", SalesforceClient::data_url(s, &version))))
        .await?;
    JobInfo::from_json(json_body(client, &what, r).await?)
}

pub async fn abort_job(client: &SalesforceClient, job_id: &str) -> Result<JobInfo, SalesforceError> {
    let version = client.api_version().to_string();
    let what = format!("abort job {job_id}");
    let r = client
        .send(&what, |http, s| {
            http.patch(format!("{}/jobs/query/{job_id}", SalesforceClient::data_url(s, &version)))
                .json(&json!({"state": "Aborted"}))
        })
        .await?;
    JobInfo::from_json(json_body(client, &what, r).await?)
}

pub async fn delete_job(client: &SalesforceClient, job_id: &str) -> Result<(), SalesforceError> {
    let version = client.api_version().to_string();
    client
        .send(&format!("delete job {job_id}"), |http, s| {
            http.delete(format!("{}/jobs/query/{job_id}", SalesforceClient::data_url(s, &version)))
        })
        .await?;
    Ok(())
}

/// Every query job the org lists, following `nextRecordsUrl`, page by page. A `nextRecordsUrl`
/// seen before, or more than `max_job_list_pages` pages, is an error, not an endless loop.
pub async fn list_jobs(client: &SalesforceClient) -> Result<Vec<JobInfo>, SalesforceError> {
    let version = client.api_version().to_string();
    let mut jobs = Vec::new();
    let mut next: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    let max_pages = client.limits().max_job_list_pages;
    loop {
        if seen.len() >= max_pages as usize {
            return Err(SalesforceError::Protocol {
                what: "list query jobs".into(),
                reason: format!(
                    "the job list goes on past {max_pages} pages (salesforce_max_job_list_pages); giving up"
                ),
            });
        }
        let path = next.clone();
        let r = client
            .send("list query jobs", |http, s| match &path {
                Some(p) => http.get(format!("{}{p}", s.instance_url)),
                None => http.get(format!("{}/jobs/query", SalesforceClient::data_url(s, &version))),
            })
            .await?;
        let page = json_body(client, "list query jobs", r).await?;
        for rec in page.get("records").and_then(Value::as_array).cloned().unwrap_or_default() {
            jobs.push(JobInfo::from_json(rec)?);
        }
        let done = page.get("done").and_then(Value::as_bool).unwrap_or(true);
        next = page.get("nextRecordsUrl").and_then(Value::as_str).map(str::to_string);
        match &next {
            _ if done => return Ok(jobs),
            None => return Ok(jobs),
            Some(url) if !seen.insert(url.clone()) => {
                return Err(SalesforceError::Protocol {
                    what: "list query jobs".into(),
                    reason: format!("the job list loops: `nextRecordsUrl` {url} came twice"),
                });
            }
            Some(_) => {}
        }
    }
}
