//! Creating a query job so that a run never ends up with two, and never takes someone else's.
//!
//! A job POST whose answer is lost (a timeout, a dropped connection, a crash before the answer
//! was recorded) may still have made a job. Posting again blindly would leave that job running as
//! an orphan; so before each POST the caller records when it posts (its intent), and after a lost
//! answer, or a restart, the org's job list is searched for the job that POST made.
//!
//! In a real org other integrations query the same objects all day, so a listed job counts as
//! ours only if every one of these holds (see [`is_own_job`]): our user created it (the
//! `createdById` of the jobs our token makes); its object, operation, content type, column
//! delimiter and line ending are the ones we asked for; it was created within
//! [intent − 5 s, intent + [`CREATE_TIMEOUT`] + 5 s]; and no other run owns it. A job failing any
//! of these is never adopted and never aborted.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::bulk::{self, CreateJob, JobInfo, delimiter_name, line_ending_name, operation_name};
use super::client::SalesforceClient;
use super::error::SalesforceError;

pub use super::bulk::CREATE_TIMEOUT;

/// Clock skew allowed between us and Salesforce (`createdDate` is the server's, in whole seconds).
const CLOCK_SLACK: chrono::Duration = chrono::Duration::seconds(5);

/// What a job create must know of the jobs already spoken for, and how it records its intent.
pub struct CreateGuard<'a> {
    /// True for a job another run owns (or one being replaced): never adopted, never aborted.
    pub taken: &'a (dyn Fn(&str) -> bool + Sync),
    /// Called before every POST: records durably that a POST is about to be made, and returns
    /// when. A restart finds the job that POST made by this time.
    pub before_post: &'a mut (dyn FnMut() -> Result<DateTime<Utc>, SalesforceError> + Send),
}

/// Creates the job, posting again after a retryable failure only once the org's list shows that
/// the failed POST made no job of ours (if it did, that job is returned).
pub async fn create_job(
    client: &SalesforceClient,
    request: &CreateJob<'_>,
    guard: CreateGuard<'_>,
) -> Result<JobInfo, SalesforceError> {
    let policy = client.retry_policy();
    let mut attempt = 1;
    loop {
        let posted_at = (guard.before_post)()?;
        crate::fault::point("query.intent_recorded");
        match bulk::post_job(client, request).await {
            Ok(job) => return Ok(job),
            Err(e) if e.is_retryable() && attempt < policy.attempts => {
                let wait = policy.backoff(attempt);
                tracing::warn!(attempt, error = %e, wait = ?wait, "creating a query job failed; looking for the job it may have made before trying again");
                tokio::time::sleep(wait).await;
                if let Some(job) = find_own_job(client, posted_at, request, guard.taken).await? {
                    tracing::info!(job = job.id, "the failed create made the job; taking it");
                    return Ok(job);
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates a job with no run to record it on: each POST's time is kept in memory only.
pub async fn create_job_unrecorded(
    client: &SalesforceClient,
    request: &CreateJob<'_>,
) -> Result<JobInfo, SalesforceError> {
    let mut now = || Ok(Utc::now());
    create_job(client, request, CreateGuard { taken: &|_| false, before_post: &mut now }).await
}

/// The job a POST made at `posted_at` created, if the org lists one (see the module's rule). Our
/// unfinished extra matches are aborted so a run never has two live jobs.
pub async fn find_own_job(
    client: &SalesforceClient,
    posted_at: DateTime<Utc>,
    request: &CreateJob<'_>,
    taken: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Option<JobInfo>, SalesforceError> {
    let session = client.session().await?;
    if session.user_id.is_empty() {
        tracing::warn!(
            "the login answer named no user (its `id` URL), so no listed job can be recognised as ours; none is adopted"
        );
        return Ok(None);
    }
    let mut matches: Vec<JobInfo> = bulk::list_jobs(client)
        .await?
        .into_iter()
        .filter(|j| is_own_job(j, &session.user_id, request, posted_at) && !taken(&j.id))
        .collect();
    matches.sort_by_key(|j| (j.created_date(), j.id.clone()));
    let mut it = matches.into_iter();
    let found = it.next();
    for extra in it {
        if extra.check_finished().ok() == Some(false) {
            tracing::warn!(job = extra.id, "aborting a second job of ours made by a create whose answer was lost");
            if let Err(e) = bulk::abort_job(client, &extra.id).await {
                tracing::warn!(job = extra.id, error = %e, "cannot abort the extra job");
            }
        }
    }
    Ok(found)
}

/// Whether `job`, as the org lists it, is the one our POST at `posted_at` may have made.
pub fn is_own_job(job: &JobInfo, user_id: &str, request: &CreateJob<'_>, posted_at: DateTime<Utc>) -> bool {
    let field = |k: &str| job.raw.get(k).and_then(Value::as_str);
    let window = posted_at - CLOCK_SLACK
        ..=posted_at + chrono::Duration::from_std(CREATE_TIMEOUT).unwrap_or_default() + CLOCK_SLACK;
    !user_id.is_empty()
        && field("createdById") == Some(user_id)
        && query_object(request.soql).is_some_and(|o| job.object.eq_ignore_ascii_case(&o))
        && field("operation") == Some(operation_name(request.operation))
        && field("contentType").is_some_and(|c| c.eq_ignore_ascii_case("CSV"))
        && field("columnDelimiter") == Some(delimiter_name(request.column_delimiter))
        && field("lineEnding") == Some(line_ending_name(request.line_ending))
        && job.created_date().is_some_and(|t| window.contains(&t))
}

/// The sObject a query reads, from its FROM clause.
pub fn query_object(soql: &str) -> Option<String> {
    let words: Vec<&str> = soql.split_whitespace().collect();
    words.iter().position(|w| w.eq_ignore_ascii_case("from")).and_then(|i| words.get(i + 1)).map(|w| w.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::salesforce::options::{ColumnDelimiter, LineEnding, QueryOperation};

    const SOQL: &str = "SELECT Id FROM Account WHERE SystemModstamp > 2026-01-01T00:00:00Z";

    fn request() -> CreateJob<'static> {
        CreateJob {
            soql: SOQL,
            operation: QueryOperation::Query,
            column_delimiter: ColumnDelimiter::Comma,
            line_ending: LineEnding::Lf,
        }
    }

    fn job(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> JobInfo {
        let mut raw = json!({
            "id": "750A", "operation": "query", "object": "Account", "createdById": "005ME",
            "createdDate": "2026-12-07T10:00:03.000+0000", "state": "InProgress",
            "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF",
        });
        edit(raw.as_object_mut().unwrap());
        JobInfo::from_json(raw).unwrap()
    }

    #[test]
    fn a_job_is_ours_only_if_every_part_of_the_rule_holds() {
        let posted: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().unwrap();
        let ours = |j: &JobInfo| is_own_job(j, "005ME", &request(), posted);
        assert!(ours(&job(|_| {})));
        assert!(!is_own_job(&job(|_| {}), "", &request(), posted), "no known user: nothing is ours");
        let set = |k: &'static str, v: &'static str| job(move |m| drop(m.insert(k.into(), json!(v))));
        assert!(!ours(&set("createdById", "005OTHER")), "another user's job");
        assert!(!ours(&set("object", "Contact")));
        assert!(!ours(&set("operation", "queryAll")));
        assert!(!ours(&set("columnDelimiter", "TAB")));
        assert!(!ours(&set("lineEnding", "CRLF")));
        assert!(!ours(&job(|m| drop(m.remove("contentType")))));
        // The window: [posted − 5 s, posted + the create timeout + 5 s].
        assert!(ours(&set("createdDate", "2026-12-07T09:59:55.000+0000")));
        assert!(!ours(&set("createdDate", "2026-12-07T09:59:54.000+0000")));
        assert!(ours(&set("createdDate", "2026-12-07T10:01:05.000+0000")));
        assert!(!ours(&set("createdDate", "2026-12-07T10:01:06.000+0000")));
    }

    #[test]
    fn the_object_of_a_query() {
        let soql = include_str!("../../../resources/salesforce/query_account.soql");
        assert_eq!(query_object(soql).as_deref(), Some("Account"));
        assert_eq!(query_object("select Id from contact").as_deref(), Some("contact"));
        assert_eq!(query_object("SELECT Id"), None);
    }
}
