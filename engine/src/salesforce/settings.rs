//! How a Salesforce client behaves towards a server it cannot trust to be well: how often it asks
//! again, and the bounds on everything it reads. Every answer comes from the network, so each has a
//! deadline and a size it may not pass; a server (or a proxy in front of it) that sends for ever,
//! or a byte a second, ends in a clear error instead of a hang.

use std::time::Duration;

/// Retries, bounds and TLS trust, one set per client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientSettings {
    pub retry: RetryPolicy,
    pub limits: Limits,
    pub trust: crate::tls::Trust,
}

/// Retries for one call (a page fetch, a job create).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, initial: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// Exponential backoff with up to 25% jitter, so clients that failed together do not retry
    /// together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.initial.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(self.max);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }
}

/// Bounds on what is read from Salesforce. The defaults sit well above anything Salesforce
/// sends, so only a broken or hostile answer meets them; each is an engine setting
/// (`salesforce_*` in `bulkflow.yaml`, a flag, an environment variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A whole call other than a results page (login, job create, job get, job list, describe):
    /// connecting, the answer and its body.
    pub request_timeout: Duration,
    /// A whole results page, from its request to its last byte. Pages are streamed, so this bounds
    /// a server that sends slowly (a byte a second passes any read timeout), not memory.
    pub page_timeout: Duration,
    /// Bytes of one results page, inflated: announced in `Content-Length` or counted as read.
    pub max_page_bytes: u64,
    /// Bytes of a JSON answer (a job, a page of the job list, a describe).
    pub max_answer_bytes: u64,
    /// Bytes of an error answer kept for the message; the rest is not read.
    pub max_error_body: u64,
    /// Pages of the job list followed (1,000 jobs a page).
    pub max_job_list_pages: u32,
    /// How long a Pub/Sub stream that has been asked for events may send nothing at all:
    /// Salesforce sends a keepalive at least every 270 s, so a stream silent for longer is dead
    /// (a half-open connection) and is subscribed again.
    pub stream_silence_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(120),
            page_timeout: Duration::from_secs(30 * 60),
            max_page_bytes: 4 << 30,
            max_answer_bytes: 64 << 20,
            max_error_body: 64 << 10,
            max_job_list_pages: 1_000,
            stream_silence_timeout: Duration::from_secs(600),
        }
    }
}

/// A byte count for messages: `4 GiB`, `64 KiB`, `1234 bytes`.
pub fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(size, _)| n >= *size && n.is_multiple_of(*size))
        .map_or_else(|| format!("{n} bytes"), |(size, unit)| format!("{} {unit}", n / size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_as_people_write_them() {
        assert_eq!(bytes(4 << 30), "4 GiB");
        assert_eq!(bytes(64 << 10), "64 KiB");
        assert_eq!(bytes(1500), "1500 bytes");
    }
}
