//! Fault injection: one settings struct shared by the command-line flags and `POST /__sim/faults`.
//!
//! Counted faults ("the next N requests") count down as they fire, so `GET /__sim/faults` shows
//! what is still armed and a test can arm exactly the failures it wants to see handled.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The org session timeout's default (a fault knob: tests shorten it).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(2 * 3600);

/// The simulator's fault settings. `POST /__sim/faults` replaces them whole: fields left out take
/// their defaults (no fault), so a test states everything it wants in one body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// The next N matching requests answer with `error_5xx_status`.
    pub error_5xx: u32,
    /// Status of those answers (500, 502, 503...).
    pub error_5xx_status: u16,
    /// The next N requests to each named endpoint answer with `error_5xx_status`, whatever
    /// `endpoints` says: a burst on several steps of an export at once, each counted on its own.
    pub error_5xx_by_endpoint: BTreeMap<String, u32>,
    /// The next N matching requests answer 403 `REQUEST_LIMIT_EXCEEDED`.
    pub request_limit: u32,
    /// Every matching request answers 403 `REQUEST_LIMIT_EXCEEDED` for this many milliseconds
    /// from when the faults are set: the org's rolling 24-hour allowance spent, then freed as
    /// old requests leave the window. Reads back as set.
    pub request_limit_ms: u64,
    /// The next N matching requests are carried out, then answered with `error_5xx_status`
    /// instead of their answer: the server acted (a job was created) but the client never learns
    /// it, as when a proxy times out or the connection drops.
    pub lose_answers: u32,
    /// Delay before every matching request is handled.
    pub latency_ms: u64,
    /// Endpoint names (as in `/__sim/stats` `requests`) that `error_5xx`, `request_limit` and
    /// `latency_ms` apply to. Empty: every REST endpoint, but not the token endpoint.
    pub endpoints: Vec<String>,
    /// Lifetime of access tokens, measured from issue; changing it applies to tokens already out.
    pub token_ttl_secs: u64,
    /// One-shot: every token issued so far stops working (401 `INVALID_SESSION_ID`). Reads back as
    /// `false` once applied.
    pub revoke_tokens: bool,
    /// The next N results bodies are cut (connection dropped) after `cut_after_bytes` bytes.
    pub cut_results: u32,
    pub cut_after_bytes: u64,
    /// The next N jobs created end `Failed` instead of `JobComplete`.
    pub fail_jobs: u32,
    /// `errorMessage` on those jobs; absent when `None`, since peers see Failed jobs both ways.
    pub failed_job_message: Option<String>,
    /// Error responses carry an HTML page instead of the JSON error array, as an edge proxy does.
    pub non_json_errors: bool,
    /// The job list pages for ever: every page says `done: false` and names itself as its
    /// `nextRecordsUrl`, as a server bug or a hostile proxy could.
    pub job_list_loop: bool,
    /// Error responses (any 4xx or 5xx) carry a body of this many bytes, streamed as it is read,
    /// as a broken proxy's might; 0 leaves them as they are. Stats count its 64 KiB chunks sent
    /// (`faults_injected.error_body_chunk`).
    pub huge_error_body_bytes: u64,
    /// The next N results pages announce one record more in `Sforce-NumberOfRecords` than they
    /// hold.
    pub miscount_pages: u32,
    /// The next N results pages send no `Sforce-Locator` header, so a client takes the page for
    /// the last one, though records remain.
    pub drop_locators: u32,
    /// The next N results pages answer 200 with an HTML page (`text/html`) instead of CSV, as a
    /// captive portal or a misrouted proxy does.
    pub html_pages: u32,
    /// The next N results pages fetched by a locator (not the first) carry a header whose last
    /// column is renamed.
    pub rename_header_pages: u32,
    /// The next N results pages leave the last field of their last record without its closing
    /// quote.
    pub unterminated_quote_pages: u32,
    /// The next N results pages carry a byte that is not UTF-8 in their first record.
    pub invalid_utf8_pages: u32,
    /// The next N results bodies end cleanly at half their length: a gzip stream without its end
    /// (or half a plain body, when gzip was not asked for).
    pub truncated_gzip_pages: u32,
    /// The next N results pages are sent uncompressed announcing `huge_page_bytes` in
    /// `Content-Length`, and that many bytes follow: the page, then its rows over and over. Stats
    /// count the 64 KiB chunks sent (`faults_injected.page_body_chunk`).
    pub huge_pages: u32,
    pub huge_page_bytes: u64,
    /// The next N results bodies are sent uncompressed a byte at a time, `slow_byte_interval_ms`
    /// apart (a slowloris).
    pub slow_pages: u32,
    pub slow_byte_interval_ms: u64,
    /// The next N Pub/Sub events published carry a payload cut to its first 4 bytes: Avro that
    /// does not decode with the schema id it names.
    pub pubsub_bad_payloads: u32,
    /// The next N Pub/Sub events published name a schema id `GetSchema` cannot resolve.
    pub pubsub_unknown_schemas: u32,
    /// One-shot: every open Pub/Sub stream ends with `UNAVAILABLE` (`service.unavailable`). Reads
    /// back as `false` once applied.
    pub pubsub_drop_streams: bool,
    /// The next N times a Pub/Sub stream has events to send, it ends with `UNAVAILABLE` instead
    /// of sending them: the connection lost with an event in flight. The events stay in the
    /// topic, for a subscriber resuming from its stored replay id.
    pub pubsub_drop_on_event: u32,
    /// One-shot: every open Pub/Sub stream stops sending anything (events and keepalives alike)
    /// but stays open, as a half-dead connection behind a proxy does. Reads back as `false` once
    /// applied.
    pub pubsub_freeze_streams: bool,
    /// The next N Pub/Sub subscriptions resuming from a replay id are refused with
    /// `replayid.corrupted`, as when the id fell out of the retention window.
    pub pubsub_corrupt_replay: u32,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            error_5xx: 0,
            error_5xx_status: 503,
            error_5xx_by_endpoint: BTreeMap::new(),
            request_limit: 0,
            request_limit_ms: 0,
            lose_answers: 0,
            latency_ms: 0,
            endpoints: Vec::new(),
            token_ttl_secs: DEFAULT_TOKEN_TTL.as_secs(),
            revoke_tokens: false,
            cut_results: 0,
            cut_after_bytes: 4096,
            fail_jobs: 0,
            failed_job_message: None,
            non_json_errors: false,
            job_list_loop: false,
            huge_error_body_bytes: 0,
            miscount_pages: 0,
            drop_locators: 0,
            html_pages: 0,
            rename_header_pages: 0,
            unterminated_quote_pages: 0,
            invalid_utf8_pages: 0,
            truncated_gzip_pages: 0,
            huge_pages: 0,
            huge_page_bytes: 5 << 30,
            slow_pages: 0,
            slow_byte_interval_ms: 1000,
            pubsub_bad_payloads: 0,
            pubsub_unknown_schemas: 0,
            pubsub_drop_streams: false,
            pubsub_drop_on_event: 0,
            pubsub_freeze_streams: false,
            pubsub_corrupt_replay: 0,
        }
    }
}

/// What the gate must do to one request before it reaches its handler.
#[derive(Debug, Default)]
pub struct RequestFaults {
    pub latency: Duration,
    pub reject: Option<Reject>,
    /// Handle the request, then answer with this status instead.
    pub lose_answer: Option<u16>,
}

/// A results page sent wrong on purpose, one kind at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFault {
    Html,
    RenameHeader,
    UnterminatedQuote,
    InvalidUtf8,
    TruncatedGzip,
    /// Announce and send this many bytes.
    Huge(u64),
    /// A byte per this interval.
    Slow(Duration),
}

impl PageFault {
    /// The name counted in `faults_injected`: the knob's.
    pub fn name(self) -> &'static str {
        match self {
            Self::Html => "html_pages",
            Self::RenameHeader => "rename_header_pages",
            Self::UnterminatedQuote => "unterminated_quote_pages",
            Self::InvalidUtf8 => "invalid_utf8_pages",
            Self::TruncatedGzip => "truncated_gzip_pages",
            Self::Huge(_) => "huge_pages",
            Self::Slow(_) => "slow_pages",
        }
    }
}

/// A Pub/Sub event published wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFault {
    BadPayload,
    UnknownSchema,
}

#[derive(Debug, Clone, Copy)]
pub enum Reject {
    ServerError(u16),
    RequestLimit,
}

/// The live fault state.
pub struct Faults {
    inner: Mutex<Inner>,
}

struct Inner {
    config: FaultConfig,
    revoked_before: Option<DateTime<Utc>>,
    /// Bumped by each `pubsub_drop_streams`; a stream opened under an older value ends.
    drop_generation: u64,
    /// Bumped by each `pubsub_freeze_streams`; a stream opened under an older value goes silent.
    freeze_generation: u64,
    /// Until when `request_limit_ms` refuses requests.
    request_limit_until: Option<Instant>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let faults = Faults {
            inner: Mutex::new(Inner {
                config: FaultConfig::default(),
                revoked_before: None,
                drop_generation: 0,
                freeze_generation: 0,
                request_limit_until: None,
            }),
        };
        faults.set(config);
        faults
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set(&self, mut config: FaultConfig) {
        let mut inner = self.lock();
        if config.revoke_tokens {
            inner.revoked_before = Some(Utc::now());
            config.revoke_tokens = false;
        }
        if config.pubsub_drop_streams {
            inner.drop_generation += 1;
            config.pubsub_drop_streams = false;
        }
        if config.pubsub_freeze_streams {
            inner.freeze_generation += 1;
            config.pubsub_freeze_streams = false;
        }
        inner.request_limit_until =
            (config.request_limit_ms > 0).then(|| Instant::now() + Duration::from_millis(config.request_limit_ms));
        inner.config = config;
    }

    pub fn get(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    /// Decides (and counts down) the request-level faults for one request to `endpoint`.
    pub fn on_request(&self, endpoint: &str) -> RequestFaults {
        let mut inner = self.lock();
        let limited = inner.request_limit_until.is_some_and(|until| Instant::now() < until);
        let c = &mut inner.config;
        if c.error_5xx_by_endpoint.get_mut(endpoint).is_some_and(countdown) {
            let latency = Duration::from_millis(c.latency_ms);
            return RequestFaults { latency, reject: Some(Reject::ServerError(c.error_5xx_status)), lose_answer: None };
        }
        let applies = if c.endpoints.is_empty() {
            endpoint != crate::stats::endpoint::TOKEN
        } else {
            c.endpoints.iter().any(|e| e == endpoint)
        };
        if !applies {
            return RequestFaults::default();
        }
        let reject = if countdown(&mut c.error_5xx) {
            Some(Reject::ServerError(c.error_5xx_status))
        } else if countdown(&mut c.request_limit) || limited {
            Some(Reject::RequestLimit)
        } else {
            None
        };
        let lose_answer = (reject.is_none() && countdown(&mut c.lose_answers)).then_some(c.error_5xx_status);
        RequestFaults { latency: Duration::from_millis(c.latency_ms), reject, lose_answer }
    }

    /// Whether this results page is to be sent without `Sforce-Locator` (counts down).
    pub fn take_dropped_locator(&self) -> bool {
        countdown(&mut self.lock().config.drop_locators)
    }

    /// The fault this results page is to carry, if one is armed (counts it down). `by_locator`:
    /// the page is not the first.
    pub fn take_page_fault(&self, by_locator: bool) -> Option<PageFault> {
        let mut inner = self.lock();
        let c = &mut inner.config;
        if countdown(&mut c.html_pages) {
            Some(PageFault::Html)
        } else if by_locator && countdown(&mut c.rename_header_pages) {
            Some(PageFault::RenameHeader)
        } else if countdown(&mut c.unterminated_quote_pages) {
            Some(PageFault::UnterminatedQuote)
        } else if countdown(&mut c.invalid_utf8_pages) {
            Some(PageFault::InvalidUtf8)
        } else if countdown(&mut c.truncated_gzip_pages) {
            Some(PageFault::TruncatedGzip)
        } else if countdown(&mut c.huge_pages) {
            Some(PageFault::Huge(c.huge_page_bytes))
        } else if countdown(&mut c.slow_pages) {
            Some(PageFault::Slow(Duration::from_millis(c.slow_byte_interval_ms)))
        } else {
            None
        }
    }

    /// Whether this results page is to announce one record too many (counts down).
    pub fn take_miscount(&self) -> bool {
        countdown(&mut self.lock().config.miscount_pages)
    }

    /// The byte count after which this results body is cut, if a cut is armed.
    pub fn take_cut(&self) -> Option<u64> {
        let mut inner = self.lock();
        let c = &mut inner.config;
        countdown(&mut c.cut_results).then_some(c.cut_after_bytes)
    }

    /// `Some(errorMessage)` when this new job is to end `Failed`.
    pub fn take_job_failure(&self) -> Option<Option<String>> {
        let mut inner = self.lock();
        let c = &mut inner.config;
        countdown(&mut c.fail_jobs).then(|| c.failed_job_message.clone())
    }

    pub fn pubsub_drop_generation(&self) -> u64 {
        self.lock().drop_generation
    }

    pub fn pubsub_freeze_generation(&self) -> u64 {
        self.lock().freeze_generation
    }

    /// What is to be wrong with this event as published, if anything (counts down).
    pub fn take_event_fault(&self) -> Option<EventFault> {
        let mut inner = self.lock();
        let c = &mut inner.config;
        if countdown(&mut c.pubsub_bad_payloads) {
            Some(EventFault::BadPayload)
        } else if countdown(&mut c.pubsub_unknown_schemas) {
            Some(EventFault::UnknownSchema)
        } else {
            None
        }
    }

    /// Whether this stream, with events to send, is to end instead (counts down).
    pub fn take_drop_on_event(&self) -> bool {
        countdown(&mut self.lock().config.pubsub_drop_on_event)
    }

    /// Whether this resuming subscription is to be refused as corrupted (counts down).
    pub fn take_replay_corruption(&self) -> bool {
        countdown(&mut self.lock().config.pubsub_corrupt_replay)
    }

    pub fn non_json_errors(&self) -> bool {
        self.lock().config.non_json_errors
    }

    pub fn huge_error_body_bytes(&self) -> u64 {
        self.lock().config.huge_error_body_bytes
    }

    pub fn job_list_loop(&self) -> bool {
        self.lock().config.job_list_loop
    }

    /// Whether a token issued at `issued_at` still works now.
    pub fn token_valid(&self, issued_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let inner = self.lock();
        let ttl = chrono::Duration::seconds(i64::try_from(inner.config.token_ttl_secs).unwrap_or(i64::MAX / 1000));
        let not_revoked = inner.revoked_before.is_none_or(|cut| issued_at > cut);
        not_revoked && issued_at + ttl > now
    }
}

/// A counted fault firing: true, one fewer left, while any are left.
fn countdown(left: &mut u32) -> bool {
    let armed = *left > 0;
    if armed {
        *left -= 1;
    }
    armed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<FaultConfig>(r#"{"error5xx": 1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn counted_faults_count_down_and_respect_endpoints() {
        let faults = Faults::new(FaultConfig {
            error_5xx: 1,
            request_limit: 1,
            endpoints: vec!["job_results".into()],
            ..FaultConfig::default()
        });
        assert!(faults.on_request("job_get").reject.is_none());
        assert!(matches!(faults.on_request("job_results").reject, Some(Reject::ServerError(503))));
        assert!(matches!(faults.on_request("job_results").reject, Some(Reject::RequestLimit)));
        assert!(faults.on_request("job_results").reject.is_none());
        let faults = Faults::new(FaultConfig { lose_answers: 1, ..FaultConfig::default() });
        assert_eq!(faults.on_request("job_create").lose_answer, Some(503));
        assert_eq!(faults.on_request("job_create").lose_answer, None);
    }

    #[test]
    fn bursts_by_endpoint_count_each_endpoint_on_its_own() {
        let by_endpoint = [("job_create".to_string(), 2), ("job_results".to_string(), 1)].into();
        let faults = Faults::new(FaultConfig {
            error_5xx_by_endpoint: by_endpoint,
            endpoints: vec!["job_list".into()],
            ..FaultConfig::default()
        });
        let rejected = |e: &str| matches!(faults.on_request(e).reject, Some(Reject::ServerError(503)));
        assert!(rejected("job_create") && rejected("job_results") && rejected("job_create"));
        assert!(!rejected("job_create") && !rejected("job_results") && !rejected("job_get"));
        assert_eq!(faults.get().error_5xx_by_endpoint.values().sum::<u32>(), 0);
    }

    #[test]
    fn a_timed_request_limit_refuses_everything_until_it_ends() {
        let faults = Faults::new(FaultConfig { request_limit_ms: 150, ..FaultConfig::default() });
        assert!(matches!(faults.on_request("job_get").reject, Some(Reject::RequestLimit)));
        assert!(matches!(faults.on_request("job_create").reject, Some(Reject::RequestLimit)));
        assert!(faults.on_request("oauth_token").reject.is_none(), "logging in is not limited");
        std::thread::sleep(Duration::from_millis(200));
        assert!(faults.on_request("job_get").reject.is_none());
    }

    #[test]
    fn revoking_expires_only_tokens_already_issued() {
        let before = Utc::now() - chrono::Duration::seconds(1);
        let faults = Faults::new(FaultConfig { revoke_tokens: true, ..FaultConfig::default() });
        assert!(!faults.get().revoke_tokens);
        let now = Utc::now() + chrono::Duration::milliseconds(5);
        assert!(!faults.token_valid(before, now));
        assert!(faults.token_valid(now, now));
    }
}
