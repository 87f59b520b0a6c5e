//! Where the Pub/Sub API is and how to reach it: the task's `endpoint`, else the credentials'
//! `pubsub_url`, else Salesforce's. `http://` means plain HTTP/2 (the simulator); anything else
//! is TLS, as Salesforce serves it.

use tonic::transport::{Channel, Endpoint};

pub const SALESFORCE: &str = "api.pubsub.salesforce.com:7443";

#[derive(Debug, thiserror::Error)]
#[error("Pub/Sub endpoint `{endpoint}`: {reason}")]
pub struct EndpointError {
    pub endpoint: String,
    pub reason: String,
}

/// The URI to dial for `endpoint` (`host:port`, `https://host:port` or `http://host:port`).
pub fn uri(configured: Option<&str>, from_credentials: Option<&str>) -> String {
    let chosen = configured.or(from_credentials).map(str::trim).filter(|s| !s.is_empty()).unwrap_or(SALESFORCE);
    if chosen.starts_with("http://") || chosen.starts_with("https://") {
        chosen.to_string()
    } else {
        format!("https://{chosen}")
    }
}

/// A lazily connecting channel: the first RPC dials, and a broken connection is redialled.
pub fn channel(uri: &str, trust: &crate::tls::Trust) -> Result<Channel, EndpointError> {
    let err = |reason: String| EndpointError { endpoint: uri.to_string(), reason };
    let mut endpoint = Endpoint::from_shared(uri.to_string()).map_err(|e| err(e.to_string()))?;
    if uri.starts_with("https://") {
        endpoint = endpoint.tls_config(trust.tonic()).map_err(|e| err(e.to_string()))?;
    }
    Ok(endpoint.connect_timeout(std::time::Duration::from_secs(10)).connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_wins_then_the_credentials_then_salesforce() {
        assert_eq!(uri(Some("h:1"), Some("http://c:2")), "https://h:1");
        assert_eq!(uri(None, Some("http://c:2")), "http://c:2");
        assert_eq!(uri(None, None), "https://api.pubsub.salesforce.com:7443");
        assert_eq!(uri(Some(" "), None), "https://api.pubsub.salesforce.com:7443");
    }

    #[tokio::test]
    async fn a_malformed_endpoint_is_a_clear_error() {
        let err = channel("http://bad host:1", &crate::tls::Trust::default()).unwrap_err().to_string();
        assert!(err.contains("`http://bad host:1`"), "{err}");
    }
}
