//! The REST "get deleted" resource: which records of an object were deleted in a window, purged
//! from the Recycle Bin or not. A `query` job never returns a deleted record and a `queryAll` job
//! only while it is in the bin, so this is how an export hears of hard deletes.
//!
//! Salesforce keeps this for about 15 days, answers by whole minutes, and wants `start` more than
//! a minute before `end`; a `start` before `earliestDateAvailable` is refused with
//! `INVALID_REPLICATION_DATE`.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::Value;

use super::SalesforceClient;
use super::bulk::{json_body, parse_datetime};
use super::error::SalesforceError;

/// How far back Salesforce reports deletes; a window reaching further is refused.
pub const RETENTION: Duration = Duration::days(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// `(Id, deletedDate)`, as Salesforce lists them.
    pub records: Vec<(String, DateTime<Utc>)>,
    pub earliest_available: DateTime<Utc>,
    pub latest_covered: DateTime<Utc>,
}

fn parse_date(what: &str, field: &str, value: &Value) -> Result<DateTime<Utc>, SalesforceError> {
    value.as_str().and_then(parse_datetime).ok_or_else(|| SalesforceError::Transport {
        what: what.into(),
        reason: format!("`{field}` is `{value}`, not an ISO 8601 date-time"),
    })
}

/// The window Salesforce will answer for `[start, end)`: whole minutes, `start` no earlier than
/// the retention allows (a minute of margin), and more than a minute long. `None` when nothing
/// of it can be asked for; the `bool` says whether `start` had to move (deletes before it are
/// no longer known to Salesforce).
pub fn askable(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>, bool)> {
    let minute = |t: DateTime<Utc>| t.duration_trunc(Duration::minutes(1)).unwrap_or(t);
    let earliest = minute(now - RETENTION) + Duration::minutes(1);
    let clamped = start < earliest;
    let start = minute(start.max(earliest));
    // Rounded up, so the minute `end` falls in is covered.
    let end = minute(end) + Duration::minutes(1);
    (end - start > Duration::minutes(1)).then_some((start, end, clamped))
}

pub async fn get_deleted(
    client: &SalesforceClient,
    object: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Deleted, SalesforceError> {
    let version = client.api_version().to_string();
    let what = format!("get deleted {object} records");
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (start, end) = (iso(start), iso(end));
    let r = client
        .send(&what, |http, s| {
            http.get(format!("{}/sobjects/{object}/deleted/", SalesforceClient::data_url(s, &version)))
                .query(&[("start", start.as_str()), ("end", end.as_str())])
        })
        .await?;
    let body = json_body(client, &what, r).await?;
    let mut records = Vec::new();
    for record in body["deletedRecords"].as_array().into_iter().flatten() {
        let id = record["id"].as_str().ok_or_else(|| SalesforceError::Transport {
            what: what.clone(),
            reason: format!("a deleted record without an `id`: {record}"),
        })?;
        records.push((id.to_string(), parse_date(&what, "deletedDate", &record["deletedDate"])?));
    }
    Ok(Deleted {
        records,
        earliest_available: parse_date(&what, "earliestDateAvailable", &body["earliestDateAvailable"])?,
        latest_covered: parse_date(&what, "latestDateCovered", &body["latestDateCovered"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn windows_are_whole_minutes_within_the_retention_and_longer_than_a_minute() {
        let now = at("2026-12-07T10:00:30Z");
        assert_eq!(
            askable(at("2026-12-07T09:00:40Z"), at("2026-12-07T09:59:10Z"), now),
            Some((at("2026-12-07T09:00:00Z"), at("2026-12-07T10:00:00Z"), false))
        );
        let (start, _, clamped) = askable(at("2026-11-01T00:00:00Z"), now, now).unwrap();
        assert!(clamped);
        assert_eq!(start, at("2026-11-22T10:01:00Z"));
        assert_eq!(askable(at("2026-12-07T10:00:00Z"), at("2026-12-07T10:00:20Z"), now), None);
    }
}
