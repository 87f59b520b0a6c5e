//! The SOQL an export runs: `--query` as given, or `SELECT fields FROM object [WHERE ...]`, with
//! `--since` added as one more condition. The SOQL itself is Salesforce's to judge; only what the
//! flags add is checked here, so a refused query names the flag it came from.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::error::ExportError;

/// What the command line says about the query.
#[derive(Debug, Clone, Default)]
pub struct QuerySpec {
    pub query: Option<String>,
    pub object: Option<String>,
    /// Empty: every field the object's describe lists that the Bulk API can select.
    pub fields: Vec<String>,
    pub filter: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// The field `since` filters on. `SystemModstamp` moves on every change, deletes included;
    /// `LastModifiedDate` only on user-visible ones.
    pub since_field: String,
}

pub const DEFAULT_SINCE_FIELD: &str = "SystemModstamp";

/// `2026-12-01T10:00:00Z`, `...+00:00`, Salesforce's `...+0000`, or a date (midnight UTC).
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, ExportError> {
    let text = text.trim();
    if let Some(t) = crate::salesforce::bulk::parse_datetime(text) {
        return Ok(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(ExportError::input(
        "--since",
        format!("`{text}` is not a date-time (2026-12-01T10:00:00Z) or a date (2026-12-01)"),
    ))
}

/// A name Salesforce could mean: letters, digits, `_` and, for relationship paths, `.`.
fn check_name(flag: &'static str, name: &str) -> Result<(), ExportError> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok { Ok(()) } else { Err(ExportError::input(flag, format!("`{name}` is not a field or object name"))) }
}

impl QuerySpec {
    /// The object whose describe supplies the fields, when none were named.
    pub fn needs_describe(&self) -> Option<&str> {
        self.object.as_deref().filter(|_| self.query.is_none() && self.fields.is_empty())
    }

    /// The SOQL to run; `described` are the object's selectable fields when `--fields` was not given.
    pub fn soql(&self, described: &[String]) -> Result<String, ExportError> {
        check_name("--since-field", &self.since_field)?;
        let since =
            self.since.map(|t| format!("{} >= {}", self.since_field, t.to_rfc3339_opts(SecondsFormat::Secs, true)));
        match (&self.query, &self.object) {
            (Some(q), None) => {
                if !self.fields.is_empty() || self.filter.is_some() {
                    return Err(ExportError::input("--fields/--where", "go with --object, not with --query".into()));
                }
                let q = q.trim();
                if q.is_empty() {
                    return Err(ExportError::input("--query", "the query is empty".into()));
                }
                Ok(match since {
                    Some(condition) => add_condition(q, &condition)?,
                    None => q.to_string(),
                })
            }
            (None, Some(object)) => {
                check_name("--object", object)?;
                let fields = if self.fields.is_empty() { described } else { &self.fields };
                if fields.is_empty() {
                    return Err(ExportError::input(
                        "--fields",
                        format!("{object} has no fields the Bulk API can select"),
                    ));
                }
                for f in fields {
                    check_name("--fields", f)?;
                }
                let mut soql = format!("SELECT {} FROM {object}", fields.join(", "));
                let conditions: Vec<String> =
                    self.filter.iter().map(|w| format!("({})", w.trim())).chain(since).collect();
                if !conditions.is_empty() {
                    soql.push_str(" WHERE ");
                    soql.push_str(&conditions.join(" AND "));
                }
                Ok(soql)
            }
            _ => Err(ExportError::input("--query/--object", "give exactly one of them".into())),
        }
    }
}

/// Clauses that may follow WHERE, at the top level of a query.
const AFTER_WHERE: &[&str] = &["GROUP", "ORDER", "LIMIT", "OFFSET", "FOR", "WITH", "UPDATE", "ALL"];

/// `condition` ANDed into the query's top-level WHERE (or added as one), outside string literals
/// and parentheses.
fn add_condition(soql: &str, condition: &str) -> Result<String, ExportError> {
    let words = top_level_words(soql);
    let from = words
        .iter()
        .position(|(_, w)| w.eq_ignore_ascii_case("FROM"))
        .ok_or_else(|| ExportError::input("--query", "the query has no FROM, so --since has nowhere to go".into()))?;
    let after_from = &words[from + 1..];
    let where_at = after_from.iter().find(|(_, w)| w.eq_ignore_ascii_case("WHERE")).map(|(at, _)| *at);
    let tail_at = after_from
        .iter()
        .filter(|(at, _)| where_at.is_none_or(|w| *at > w))
        .find(|(_, w)| AFTER_WHERE.iter().any(|k| w.eq_ignore_ascii_case(k)))
        .map(|(at, _)| *at)
        .unwrap_or(soql.len());
    let head = soql[..tail_at].trim_end();
    let tail = soql[tail_at..].trim();
    let joined = match where_at {
        Some(w) => format!("{} WHERE ({}) AND {condition}", soql[..w].trim_end(), head[w + "WHERE".len()..].trim()),
        None => format!("{head} WHERE {condition}"),
    };
    Ok(if tail.is_empty() { joined } else { format!("{joined} {tail}") })
}

/// Byte offsets and text of the words outside quotes and parentheses.
fn top_level_words(soql: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
    let mut start: Option<usize> = None;
    for (i, c) in soql.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => quoted = false,
                _ => {}
            }
            continue;
        }
        let word_char = c.is_alphanumeric() || c == '_' || c == '.';
        if word_char {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take()
            && depth == 0
        {
            words.push((s, &soql[s..i]));
        }
        match c {
            '\'' => quoted = true,
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
    }
    if let Some(s) = start
        && depth == 0
    {
        words.push((s, &soql[s..]));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since(query: &str) -> String {
        let spec = QuerySpec {
            query: Some(query.into()),
            since: Some(parse_since("2026-12-01T10:00:00Z").unwrap()),
            since_field: DEFAULT_SINCE_FIELD.into(),
            ..QuerySpec::default()
        };
        spec.soql(&[]).unwrap()
    }

    #[test]
    fn since_joins_the_top_level_where_and_keeps_the_clauses_after_it() {
        let c = "SystemModstamp >= 2026-12-01T10:00:00Z";
        assert_eq!(since("SELECT Id FROM Account"), format!("SELECT Id FROM Account WHERE {c}"));
        assert_eq!(
            since("SELECT Id FROM Account WHERE Name = 'a or (b' OR Type = 'x' ORDER BY Id LIMIT 5"),
            format!("SELECT Id FROM Account WHERE (Name = 'a or (b' OR Type = 'x') AND {c} ORDER BY Id LIMIT 5")
        );
        assert_eq!(since("select Id from Account limit 10"), format!("select Id from Account WHERE {c} limit 10"));
        // Words inside quotes are not clauses, and field names that start like one are not either.
        assert_eq!(
            since("SELECT Id, ForecastCategory FROM Opportunity WHERE Name = 'ORDER BY x'"),
            format!("SELECT Id, ForecastCategory FROM Opportunity WHERE (Name = 'ORDER BY x') AND {c}")
        );
    }

    #[test]
    fn object_fields_and_where_make_the_query() {
        let spec = QuerySpec {
            object: Some("Account".into()),
            fields: vec!["Id".into(), "Name".into()],
            filter: Some("Type = 'Customer'".into()),
            since: Some(parse_since("2026-12-01").unwrap()),
            since_field: "LastModifiedDate".into(),
            ..QuerySpec::default()
        };
        assert_eq!(
            spec.soql(&[]).unwrap(),
            "SELECT Id, Name FROM Account WHERE (Type = 'Customer') AND LastModifiedDate >= 2026-12-01T00:00:00Z"
        );
        let described = QuerySpec { fields: vec![], filter: None, since: None, ..spec.clone() };
        assert_eq!(described.needs_describe(), Some("Account"));
        assert_eq!(described.soql(&["Id".into(), "Type".into()]).unwrap(), "SELECT Id, Type FROM Account");
    }

    #[test]
    fn bad_flags_are_named() {
        let flag = |spec: QuerySpec| match spec.soql(&[]) {
            Err(ExportError::Input { flag, .. }) => flag,
            other => panic!("{other:?}"),
        };
        let base = QuerySpec { since_field: DEFAULT_SINCE_FIELD.into(), ..QuerySpec::default() };
        assert_eq!(flag(QuerySpec { object: Some("Acc ount".into()), ..base.clone() }), "--object");
        assert_eq!(
            flag(QuerySpec { object: Some("Account".into()), fields: vec!["Id;".into()], ..base.clone() }),
            "--fields"
        );
        assert_eq!(
            flag(QuerySpec { query: Some("SELECT Id".into()), since: Some(Utc::now()), ..base.clone() }),
            "--query"
        );
        assert_eq!(flag(base.clone()), "--query/--object");
        assert!(matches!(parse_since("yesterday"), Err(ExportError::Input { flag: "--since", .. })));
    }
}
