//! What can stop an export, split by who must act: the user's input (exit 2) or anything else.

use crate::salesforce::SalesforceError;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A flag's value is wrong; the message names the flag.
    #[error("{flag}: {reason}")]
    Input { flag: &'static str, reason: String },
    /// Salesforce refused the query itself (a malformed query, an unknown field or object).
    #[error("Salesforce refused the query: {code}: {message}\n  query: {soql}")]
    Query { soql: String, code: String, message: String },
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error("{what}: {reason}")]
    Output { what: String, reason: String },
    #[error("interrupted; run the same command again to resume from the last file written")]
    Interrupted,
}

impl ExportError {
    pub fn input(flag: &'static str, reason: String) -> Self {
        Self::Input { flag, reason }
    }

    pub fn output(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Output { what: what.into(), reason: reason.to_string() }
    }

    /// The user must change the command line: exit status 2.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Input { .. } | Self::Query { .. })
    }

    /// A job create refused with 400 is the query's fault (MALFORMED_QUERY, INVALID_FIELD,
    /// INVALID_TYPE, ...): Salesforce checks the SOQL when the job is created.
    pub fn from_create(soql: &str, e: SalesforceError) -> Self {
        match e {
            SalesforceError::Api { status: 400, code, message, .. } => {
                Self::Query { soql: soql.to_string(), code, message }
            }
            other => Self::Salesforce(other),
        }
    }
}
