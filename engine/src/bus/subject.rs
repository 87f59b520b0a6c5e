//! NATS subjects: dot-separated tokens; in filters `*` matches one token and `>` the rest (one or
//! more tokens). The embedded bus routes and filters with these rules so a flow behaves the same
//! on either bus.

use super::BusError;

/// Checks a subject a message is published to: no wildcards, no empty tokens, no whitespace.
pub fn validate_subject(subject: &str) -> Result<(), BusError> {
    validate(subject, false)
}

/// Checks a subject filter (a stream's subjects, a consumer's filter): wildcards allowed, `>` last.
pub fn validate_filter(filter: &str) -> Result<(), BusError> {
    validate(filter, true)
}

fn validate(subject: &str, wildcards: bool) -> Result<(), BusError> {
    let bad = |why| Err(BusError::Invalid { what: "subject", value: subject.to_string(), why });
    if subject.is_empty() {
        return bad("it is empty");
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return bad("it has an empty token (`..`, or a leading or trailing `.`)");
        }
        if token.chars().any(char::is_whitespace) {
            return bad("it contains whitespace");
        }
        let wildcard = *token == "*" || *token == ">";
        if wildcard && !wildcards {
            return bad("a published subject cannot contain wildcards");
        }
        if !wildcard && (token.contains('*') || token.contains('>')) {
            return bad("`*` and `>` must be whole tokens");
        }
        if *token == ">" && i + 1 != tokens.len() {
            return bad("`>` must be the last token");
        }
    }
    Ok(())
}

/// Whether `subject` (no wildcards) matches `filter`.
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for f in filter.split('.') {
        match (f, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (f, Some(s)) if f == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

/// Whether some subject could match both filters: two streams must not claim the same subject.
pub fn overlaps(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == "*" || y == "*" || x == y => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_nats_does() {
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(matches("a.*", "a.b"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("a.>", "a.b"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("*.b.>", "x.b.c.d"));
        assert!(matches(">", "anything.at.all"));
    }

    #[test]
    fn bad_subjects_are_refused() {
        for bad in ["", "a..b", ".a", "a.", "a b", "a.>.b", "a.b*"] {
            assert!(validate_filter(bad).is_err(), "{bad}");
        }
        assert!(validate_subject("a.*").is_err());
        assert!(validate_subject("salesforce_bulkapi.query_jobs.account").is_ok());
        assert!(validate_filter("salesforce_bulkapi.>").is_ok());
    }

    #[test]
    fn overlapping_filters() {
        assert!(overlaps("a.>", "a.b"));
        assert!(overlaps("a.*", "*.b"));
        assert!(!overlaps("a.b", "a.c"));
        assert!(!overlaps("a.*", "a.b.c"));
        assert!(overlaps("a.*.c", "a.>"));
    }
}
