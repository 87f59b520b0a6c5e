//! One `Subscribe` or `ManagedSubscribe` stream: replay position from the first request (or the
//! managed subscription's last commit), credit summed and capped at 100, delivery in replay order,
//! keepalives while credit waits, an idle close when the client stops asking, commits on managed
//! streams, and the faults that end streams.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bulkflow_pubsub_proto::{
    CommitReplayResponse, ConsumerEvent, FetchRequest, FetchResponse, ManagedFetchRequest, ManagedFetchResponse,
    ReplayPreset,
};
use tokio::sync::mpsc;
use tonic::{Code, Status, Streaming};

use super::auth::{self, Caller};
use super::log::{self, ReplayLog};
use super::status::{self, REPLAY_CORRUPTED, REPLAY_VALIDATION_FAILED, REQUESTED_EVENTS_INVALID, TOPIC_MISMATCH};
use super::{PubSubSettings, PubSubStats, avro};
use crate::state::AppState;

/// Outstanding credit never exceeds this; more is treated as this.
pub const MAX_CREDIT: i32 = 100;
/// How often a stream looks at its deadlines, its token and the faults.
const TICK: Duration = Duration::from_millis(50);

/// What a client sends on either kind of stream.
pub trait Inbound: Send + 'static {
    /// The topic it names (`Subscribe` only; a managed stream's topic is its subscription's).
    fn topic(&self) -> &str;
    fn num_requested(&self) -> i32;
    /// A commit of a replay id (`ManagedSubscribe` only): request id and replay id.
    fn commit(&self) -> Option<(&str, &[u8])>;
}

impl Inbound for FetchRequest {
    fn topic(&self) -> &str {
        &self.topic_name
    }
    fn num_requested(&self) -> i32 {
        self.num_requested
    }
    fn commit(&self) -> Option<(&str, &[u8])> {
        None
    }
}

impl Inbound for ManagedFetchRequest {
    fn topic(&self) -> &str {
        ""
    }
    fn num_requested(&self) -> i32 {
        self.num_requested
    }
    fn commit(&self) -> Option<(&str, &[u8])> {
        self.commit_replay_id_request.as_ref().map(|c| (c.commit_request_id.as_str(), c.replay_id.as_slice()))
    }
}

/// What the server sends on either kind of stream.
pub trait Outbound: Send + 'static {
    fn events(events: Vec<ConsumerEvent>, latest_replay_id: Vec<u8>, pending: i32) -> Self;
    fn committed(response: CommitReplayResponse, pending: i32) -> Self;
}

impl Outbound for FetchResponse {
    fn events(events: Vec<ConsumerEvent>, latest_replay_id: Vec<u8>, pending: i32) -> Self {
        FetchResponse { events, latest_replay_id, rpc_id: crate::ids::new_uuid(), pending_num_requested: pending }
    }
    fn committed(_: CommitReplayResponse, pending: i32) -> Self {
        Self::events(vec![], vec![], pending)
    }
}

impl Outbound for ManagedFetchResponse {
    fn events(events: Vec<ConsumerEvent>, latest_replay_id: Vec<u8>, pending: i32) -> Self {
        ManagedFetchResponse {
            events,
            latest_replay_id,
            rpc_id: crate::ids::new_uuid(),
            pending_num_requested: pending,
            commit_response: None,
        }
    }
    fn committed(response: CommitReplayResponse, pending: i32) -> Self {
        ManagedFetchResponse { commit_response: Some(response), ..Self::events(vec![], vec![], pending) }
    }
}

pub struct Stream<P> {
    pub app: Arc<AppState>,
    pub log: Arc<ReplayLog>,
    pub settings: PubSubSettings,
    pub stats: Arc<PubSubStats>,
    pub caller: Caller,
    pub out: mpsc::Sender<Result<P, Status>>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Where a stream starts, from its first request.
pub struct Opened {
    pub topic: String,
    pub cursor: u64,
    pub credit: i32,
    /// The managed subscription whose commits this stream records.
    pub managed: Option<String>,
}

enum End {
    /// The client went away or the stream closed normally.
    Quiet,
    Error(Status),
}

impl Stream<FetchResponse> {
    /// Reads the first request and fixes the replay position before the response headers go out,
    /// so a client whose `Subscribe` call returned knows events from then on will reach it.
    /// `Ok(None)`: the client went away first.
    pub async fn open(&self, inbound: &mut Streaming<FetchRequest>) -> Result<Option<Opened>, Status> {
        self.stats.subscribes.fetch_add(1, Ordering::Relaxed);
        let first = match inbound.message().await {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => return Ok(None),
        };
        let cursor = self.start(&first)?;
        let credit = self.credit(0, first.num_requested)?;
        Ok(Some(Opened { topic: first.topic_name, cursor, credit, managed: None }))
    }

    fn start(&self, first: &FetchRequest) -> Result<u64, Status> {
        if first.topic_name != avro::TOPIC {
            return Err(super::topic_not_found(&first.topic_name));
        }
        match ReplayPreset::try_from(first.replay_preset) {
            Ok(ReplayPreset::Latest) => Ok(self.log.latest()),
            Ok(ReplayPreset::Earliest) => Ok(self.log.earliest()),
            Ok(ReplayPreset::Custom) if first.replay_id.is_empty() => Err(status::error(
                Code::InvalidArgument,
                REPLAY_VALIDATION_FAILED,
                "replay_preset CUSTOM needs a replay_id",
            )),
            Ok(ReplayPreset::Custom) => {
                let corrupted = || {
                    status::error(
                        Code::InvalidArgument,
                        REPLAY_CORRUPTED,
                        "the replay id is invalid or outside the retention window",
                    )
                };
                if self.app.faults.take_replay_corruption() {
                    self.stats.replay_corrupted.fetch_add(1, Ordering::Relaxed);
                    return Err(corrupted());
                }
                self.log.resume_after(&first.replay_id).map_err(|_| {
                    self.stats.replay_corrupted.fetch_add(1, Ordering::Relaxed);
                    corrupted()
                })
            }
            Err(_) => Err(status::error(Code::InvalidArgument, REPLAY_VALIDATION_FAILED, "unknown replay_preset")),
        }
    }
}

impl<P: Outbound> Stream<P> {
    pub async fn run<R: Inbound>(self, inbound: Streaming<R>, opened: Opened) {
        if let End::Error(status) = self.drive(inbound, opened).await {
            tracing::info!(code = ?status.code(), message = status.message(), "Pub/Sub stream ended with an error");
            let _ = self.out.send(Err(status)).await;
        }
    }

    pub(super) fn credit(&self, credit: i32, requested: i32) -> Result<i32, Status> {
        if requested <= 0 {
            return Err(status::error(
                Code::InvalidArgument,
                REQUESTED_EVENTS_INVALID,
                "num_requested must be positive",
            ));
        }
        let asked = i64::from(credit) + i64::from(requested);
        self.stats.max_requested_credit.fetch_max(u64::try_from(asked).unwrap_or(0), Ordering::Relaxed);
        Ok(i32::try_from(asked.min(i64::from(MAX_CREDIT))).unwrap_or(MAX_CREDIT))
    }

    async fn send(&self, response: P) -> bool {
        self.out.send(Ok(response)).await.is_ok()
    }

    async fn drive<R: Inbound>(&self, mut inbound: Streaming<R>, opened: Opened) -> End {
        let Opened { topic, mut cursor, mut credit, managed } = opened;
        let drop_generation = self.app.faults.pubsub_drop_generation();
        let freeze_generation = self.app.faults.pubsub_freeze_generation();
        let mut appended = self.log.watch();
        let mut last_sent = Instant::now();
        let mut last_asked = Instant::now();
        loop {
            if !self.caller.still_valid(&self.app) {
                self.stats.auth_errors.fetch_add(1, Ordering::Relaxed);
                return End::Error(auth::expired());
            }
            if *self.shutdown.borrow() {
                return End::Error(status::error(Code::Unavailable, status::UNAVAILABLE, "the server is stopping"));
            }
            if self.app.faults.pubsub_drop_generation() != drop_generation {
                self.stats.streams_dropped.fetch_add(1, Ordering::Relaxed);
                return End::Error(status::error(Code::Unavailable, status::UNAVAILABLE, "the stream was reset"));
            }
            if self.app.faults.pubsub_freeze_generation() != freeze_generation {
                self.stats.streams_frozen.fetch_add(1, Ordering::Relaxed);
                // Open, reading, and saying nothing, until the client gives up on it.
                while let Ok(Some(_)) = inbound.message().await {}
                return End::Quiet;
            }
            if credit > 0 {
                let max = usize::try_from(credit).unwrap_or(0);
                let (events, latest) = self.log.read_after(&topic, cursor, max);
                if !events.is_empty() && self.app.faults.take_drop_on_event() {
                    self.stats.streams_dropped.fetch_add(1, Ordering::Relaxed);
                    self.app.stats.fault("pubsub_drop_on_event");
                    return End::Error(status::error(Code::Unavailable, status::UNAVAILABLE, "the stream was reset"));
                }
                if let Some((last, _)) = events.last() {
                    cursor = *last;
                    let n = i32::try_from(events.len()).unwrap_or(MAX_CREDIT);
                    credit -= n;
                    self.stats.events_delivered.fetch_add(events.len() as u64, Ordering::Relaxed);
                    let events = events
                        .into_iter()
                        .map(|(seq, event)| ConsumerEvent { event: Some(event), replay_id: log::encode(seq) })
                        .collect();
                    if !self.send(P::events(events, log::encode(cursor), credit)).await {
                        return End::Quiet;
                    }
                    last_sent = Instant::now();
                    if credit == 0 {
                        last_asked = Instant::now();
                    }
                    continue;
                }
                if last_sent.elapsed() >= self.settings.keepalive {
                    self.stats.keepalives.fetch_add(1, Ordering::Relaxed);
                    if !self.send(P::events(vec![], log::encode(latest), credit)).await {
                        return End::Quiet;
                    }
                    cursor = cursor.max(latest);
                    last_sent = Instant::now();
                }
            } else if last_asked.elapsed() >= self.settings.idle_close {
                self.stats.idle_closes.fetch_add(1, Ordering::Relaxed);
                tracing::info!("closing an idle Pub/Sub stream (no credit requested)");
                return End::Quiet;
            }
            tokio::select! {
                request = inbound.message() => match request {
                    Ok(Some(r)) => {
                        if !r.topic().is_empty() && r.topic() != topic {
                            return End::Error(status::error(Code::InvalidArgument, TOPIC_MISMATCH, "topic_name differs from the first request's"));
                        }
                        if let (Some((request_id, replay_id)), Some(subscription)) = (r.commit(), &managed) {
                            let response = self.app.managed.commit(subscription, request_id, replay_id, &self.log);
                            if !self.send(P::committed(response, credit)).await {
                                return End::Quiet;
                            }
                        }
                        // A managed request may carry only a commit.
                        if r.commit().is_none() || r.num_requested() != 0 {
                            credit = match self.credit(credit, r.num_requested()) {
                                Ok(c) => c,
                                Err(s) => return End::Error(s),
                            };
                            last_asked = Instant::now();
                        }
                    }
                    Ok(None) | Err(_) => return End::Quiet,
                },
                _ = appended.changed() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }
}
