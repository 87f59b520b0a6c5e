//! SOQL errors, shaped like the API's `[{"errorCode", "message"}]` entries.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error_code}: {message}")]
pub struct SoqlError {
    /// `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE`, `INVALIDENTITY`,
    /// `INVALID_QUERY_FILTER_OPERATOR` or `API_ERROR`.
    pub error_code: String,
    /// Salesforce-like text. Query compile errors carry Salesforce's position prefix:
    /// `"\n<query line>\n<spaces>^\nERROR at Row:1:Column:12\n<reason>"`.
    pub message: String,
}

pub(crate) const MALFORMED_QUERY: &str = "MALFORMED_QUERY";
pub(crate) const INVALID_FIELD: &str = "INVALID_FIELD";
pub(crate) const INVALID_TYPE: &str = "INVALID_TYPE";
pub(crate) const INVALIDENTITY: &str = "INVALIDENTITY";
pub(crate) const INVALID_QUERY_FILTER_OPERATOR: &str = "INVALID_QUERY_FILTER_OPERATOR";
pub(crate) const API_ERROR: &str = "API_ERROR";

impl SoqlError {
    pub(crate) fn new(error_code: &str, message: impl Into<String>) -> Self {
        Self { error_code: error_code.to_owned(), message: message.into() }
    }

    /// An error at byte offset `pos` of `soql`, with the position prefix Salesforce puts on
    /// compile errors.
    pub(crate) fn at(error_code: &str, soql: &str, pos: usize, reason: impl AsRef<str>) -> Self {
        let pos = pos.min(soql.len());
        let before = &soql[..pos];
        let row = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = soql[line_start..].find('\n').map_or(soql.len(), |i| line_start + i);
        let column = soql[line_start..pos].chars().count() + 1;
        let message = format!(
            "\n{}\n{}^\nERROR at Row:{row}:Column:{column}\n{}",
            &soql[line_start..line_end],
            " ".repeat(column - 1),
            reason.as_ref()
        );
        Self::new(error_code, message)
    }

    pub(crate) fn unexpected(soql: &str, pos: usize, token: &str) -> Self {
        Self::at(MALFORMED_QUERY, soql, pos, format!("unexpected token: '{token}'"))
    }

    /// A construct Bulk API 2.0 refuses; the messages follow the ones Salesforce is known to
    /// send ("Selecting compound data not supported in Bulk Query", "Aggregate Relationships not
    /// supported in Bulk Query").
    pub(crate) fn not_in_bulk(what: &str) -> Self {
        Self::new(API_ERROR, format!("{what} not supported in Bulk Query"))
    }

    /// Valid SOQL the simulator does not implement: said plainly, never disguised as a
    /// Salesforce error.
    pub(crate) fn simulator_limit(what: &str) -> Self {
        Self::new(API_ERROR, format!("the Salesforce simulator does not support {what}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_prefix_points_at_the_column() {
        let e = SoqlError::at(MALFORMED_QUERY, "SELECT Id FRM Account", 10, "unexpected token: 'FRM'");
        assert_eq!(
            e.message,
            "\nSELECT Id FRM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FRM'"
        );
        let e = SoqlError::at(MALFORMED_QUERY, "SELECT Id\nFROM Account\nWHER", 23, "x");
        assert!(e.message.starts_with("\nWHER\n^\nERROR at Row:3:Column:1\n"), "{}", e.message);
    }
}
