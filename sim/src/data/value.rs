//! A generated field value and its Bulk CSV text.

use chrono::{DateTime, NaiveDate, SecondsFormat};

/// Timestamps are whole seconds since the Unix epoch: Salesforce stores datetimes to the second,
/// which is why every CSV datetime ends in `.000Z`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Text(String),
    Bool(bool),
    Int(i64),
    /// Double, currency and percent alike.
    Number(f64),
    Date(NaiveDate),
    DateTime(i64),
}

impl Value {
    /// The CSV cell text; `None` for null.
    ///
    /// Numbers are plain decimals without exponent or trailing `.0` (`350000000`, `1250.5`):
    /// Salesforce's CSV is documented only as "plain decimal text", and a client must accept both
    /// `350000000` and `350000000.0`, so the simulator emits the shorter form.
    pub(crate) fn to_csv(&self) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Text(text) => Some(text.clone()),
            Self::Bool(b) => Some(b.to_string()),
            Self::Int(i) => Some(i.to_string()),
            Self::Number(n) => Some(format_number(*n)),
            Self::Date(d) => Some(d.format("%Y-%m-%d").to_string()),
            Self::DateTime(secs) => Some(format_datetime(*secs)),
        }
    }
}

/// Rust's `Display` for `f64` never uses an exponent and prints integral values without `.0`.
pub(crate) fn format_number(n: f64) -> String {
    n.to_string()
}

/// `2024-01-01T00:00:00.000Z`.
pub(crate) fn format_datetime(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_formats() {
        assert_eq!(Value::Null.to_csv(), None);
        assert_eq!(Value::Bool(true).to_csv().as_deref(), Some("true"));
        assert_eq!(Value::Number(350_000_000.0).to_csv().as_deref(), Some("350000000"));
        assert_eq!(Value::Number(1250.5).to_csv().as_deref(), Some("1250.5"));
        assert_eq!(Value::Number(1e21).to_csv().as_deref(), Some("1000000000000000000000"));
        assert_eq!(Value::Int(-3).to_csv().as_deref(), Some("-3"));
        let date = NaiveDate::from_ymd_opt(2024, 1, 2).map(Value::Date);
        assert_eq!(date.and_then(|d| d.to_csv()).as_deref(), Some("2024-01-02"));
        assert_eq!(Value::DateTime(1_704_067_200).to_csv().as_deref(), Some("2024-01-01T00:00:00.000Z"));
    }
}
