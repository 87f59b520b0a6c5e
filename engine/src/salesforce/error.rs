//! Errors from Salesforce, classified by what the caller should do about them.

/// One REST error, as Salesforce returns them: `[{"errorCode": "...", "message": "..."}]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ApiErrorBody {
    #[serde(rename = "errorCode", default)]
    pub error_code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SalesforceError {
    #[error("Salesforce login failed at {url}: {error}: {description}")]
    Auth { url: String, error: String, description: String },
    #[error("Salesforce answered {status} on {what}: {code}: {message}")]
    Api { what: String, status: u16, code: String, message: String },
    #[error("Salesforce's daily API limit is exhausted ({message}); not retrying until the next run")]
    RequestLimit { message: String },
    #[error("cannot reach Salesforce for {what}: {reason}")]
    Transport { what: String, reason: String },
    /// The server's certificate is not trusted: asking again meets the same certificate.
    #[error("cannot reach Salesforce for {what}: {reason}")]
    Untrusted { what: String, reason: String },
    #[error("Salesforce job {job_id} failed: {message}")]
    JobFailed { job_id: String, message: String },
    #[error("Salesforce job {job_id} was aborted")]
    JobAborted { job_id: String },
    #[error("results of job {job_id} are incomplete: {reason}")]
    Truncated { job_id: String, reason: String },
    #[error("results of job {job_id}, page {page}: {reason}")]
    Csv { job_id: String, page: u64, reason: String },
    /// An answer that is not what was asked for (HTML where CSV or JSON belongs, as from a proxy
    /// or a captive portal): asking again may reach Salesforce itself.
    #[error("Salesforce's answer to {what} is not what was asked for: {reason}")]
    Garbled { what: String, reason: String },
    /// An answer that makes no sense and will not by asking again (a job list that loops).
    #[error("Salesforce's answer to {what} makes no sense: {reason}")]
    Protocol { what: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("state store: {0}")]
    State(String),
}

impl SalesforceError {
    /// Worth another attempt: the network, a 5xx, a body cut short. Limits, bad requests and
    /// failed jobs are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Truncated { .. } | Self::Garbled { .. } => true,
            Self::Api { status, .. } => *status >= 500 || *status == 429 || *status == 420 || *status == 406,
            _ => false,
        }
    }

    /// A failed call, with its causes: reqwest's own message ("error sending request") names
    /// none, and the cause is what an operator acts on (a refused connection, a certificate not
    /// trusted). The URL is left out: a results locator or a query can be in it.
    pub fn transport(what: &str, e: reqwest::Error) -> Self {
        let e = e.without_url();
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !reason.contains(&text) {
                reason.push_str(": ");
                reason.push_str(&text);
            }
            source = cause.source();
        }
        if reason.contains("invalid peer certificate") {
            reason.push_str(
                " (for a private CA, or a proxy that re-signs TLS, give its CA certificate with --tls-ca-file)",
            );
            return Self::Untrusted { what: what.to_string(), reason };
        }
        Self::Transport { what: what.to_string(), reason }
    }

    /// The job is gone: deleted, expired after 7 days, or a different org.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }

    /// Build from a non-2xx response body. Bodies are not always JSON (an edge proxy's HTML).
    pub fn from_response(what: &str, status: u16, body: &str) -> Self {
        let parsed = serde_json::from_str::<Vec<ApiErrorBody>>(body).ok().and_then(|v| v.into_iter().next());
        let (code, message) = match parsed {
            Some(e) => (e.error_code, e.message),
            None => ("NON_JSON_ERROR".to_string(), body.chars().take(200).collect::<String>().trim().to_string()),
        };
        if status == 403 && code == "REQUEST_LIMIT_EXCEEDED" {
            return Self::RequestLimit { message };
        }
        Self::Api { what: what.to_string(), status, code, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_responses() {
        let limit = SalesforceError::from_response(
            "create job",
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert!(matches!(limit, SalesforceError::RequestLimit { .. }) && !limit.is_retryable());
        let html = SalesforceError::from_response("get job", 503, "<html>Service Unavailable</html>");
        assert!(html.is_retryable());
        assert!(html.to_string().contains("NON_JSON_ERROR: <html>Service Unavailable</html>"), "{html}");
        let gone = SalesforceError::from_response(
            "get job",
            404,
            r#"[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]"#,
        );
        assert!(gone.is_not_found() && !gone.is_retryable());
    }
}
