//! Run identity: one tick of one flow.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// `<flow>@<scheduled time>`, e.g. `salesforce_bulkapi_query_account@2026-11-25T09:05:00Z`.
///
/// Deriving the id from the tick (not generating one) is what makes opening a run idempotent:
/// a tick fired again after a crash names the run it already opened.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// The id of `flow`'s tick at `scheduled_at` (to the second; finer parts are dropped).
    pub fn new(flow: &str, scheduled_at: DateTime<Utc>) -> Self {
        RunId(format!("{flow}@{}", scheduled_at.to_rfc3339_opts(SecondsFormat::Secs, true)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The flow part. Flow names may contain `@`; the time never does, so split at the last.
    pub fn flow(&self) -> &str {
        self.split().0
    }

    pub fn scheduled_at(&self) -> DateTime<Utc> {
        self.split().1.parse().expect("a RunId is only built with a valid time")
    }

    fn split(&self) -> (&str, &str) {
        self.0.rsplit_once('@').expect("a RunId always contains '@'")
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

/// Stored ids are validated on decode, so a corrupt one is a decode error, not a later panic.
impl TryFrom<String> for RunId {
    type Error = InvalidRunId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a run id; expected <flow>@<time>, e.g. my_flow@2026-11-25T09:05:00Z")]
pub struct InvalidRunId(String);

/// Parses an id typed by a person or sent by the control API, in canonical form only, so two
/// spellings of one tick cannot name two runs.
impl FromStr for RunId {
    type Err = InvalidRunId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidRunId(s.to_owned());
        let (flow, time) = s.rsplit_once('@').ok_or_else(invalid)?;
        let time: DateTime<Utc> = time.parse().map_err(|_| invalid())?;
        let id = RunId::new(flow, time);
        if flow.is_empty() || id.0 != s {
            return Err(invalid());
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_flow_at_tick_to_the_second() {
        let t: DateTime<Utc> = "2026-11-25T09:05:00.731Z".parse().unwrap();
        let id = RunId::new("salesforce_bulkapi_query_account", t);
        assert_eq!(id.as_str(), "salesforce_bulkapi_query_account@2026-11-25T09:05:00Z");
        assert_eq!(id.flow(), "salesforce_bulkapi_query_account");
        assert_eq!(id.scheduled_at(), "2026-11-25T09:05:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn parse_accepts_only_canonical_ids() {
        let id: RunId = "a@b@2026-11-25T09:05:00Z".parse().unwrap();
        assert_eq!(id.flow(), "a@b");
        for bad in [
            "flow",
            "@2026-11-25T09:05:00Z",
            "flow@yesterday",
            "flow@2026-11-25T09:05:00.5Z",
            "flow@2026-11-25T10:05:00+01:00",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }
}
