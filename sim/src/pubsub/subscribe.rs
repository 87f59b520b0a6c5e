//! One `Subscribe` stream: replay position from the first request, credit summed and capped at
//! 100, delivery in replay order, keepalives while credit waits, an idle close when the client
//! stops asking, and the faults that end streams.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bulkflow_pubsub_proto::{ConsumerEvent, FetchRequest, FetchResponse, ReplayPreset};
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

pub struct Stream {
    pub app: Arc<AppState>,
    pub log: Arc<ReplayLog>,
    pub settings: PubSubSettings,
    pub stats: Arc<PubSubStats>,
    pub caller: Caller,
    pub out: mpsc::Sender<Result<FetchResponse, Status>>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Where a stream starts, from its first request.
pub struct Opened {
    topic: String,
    cursor: u64,
    credit: i32,
}

enum End {
    /// The client went away or the stream closed normally.
    Quiet,
    Error(Status),
}

impl Stream {
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
        Ok(Some(Opened { topic: first.topic_name, cursor, credit }))
    }

    pub async fn run(self, inbound: Streaming<FetchRequest>, opened: Opened) {
        if let End::Error(status) = self.drive(inbound, opened).await {
            tracing::info!(code = ?status.code(), message = status.message(), "Pub/Sub stream ended with an error");
            let _ = self.out.send(Err(status)).await;
        }
    }

    fn credit(&self, credit: i32, requested: i32) -> Result<i32, Status> {
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

    async fn send(&self, response: FetchResponse) -> bool {
        self.out.send(Ok(response)).await.is_ok()
    }

    async fn drive(&self, mut inbound: Streaming<FetchRequest>, opened: Opened) -> End {
        let Opened { topic, mut cursor, mut credit } = opened;
        let drop_generation = self.app.faults.pubsub_drop_generation();
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
            if credit > 0 {
                let max = usize::try_from(credit).unwrap_or(0);
                let (events, latest) = self.log.read_after(&topic, cursor, max);
                if let Some((last, _)) = events.last() {
                    cursor = *last;
                    let n = i32::try_from(events.len()).unwrap_or(MAX_CREDIT);
                    credit -= n;
                    self.stats.events_delivered.fetch_add(events.len() as u64, Ordering::Relaxed);
                    let events = events
                        .into_iter()
                        .map(|(seq, event)| ConsumerEvent { event: Some(event), replay_id: log::encode(seq) })
                        .collect();
                    let response = FetchResponse {
                        events,
                        latest_replay_id: log::encode(cursor),
                        rpc_id: crate::ids::new_uuid(),
                        pending_num_requested: credit,
                    };
                    if !self.send(response).await {
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
                    let response = FetchResponse {
                        events: vec![],
                        latest_replay_id: log::encode(latest),
                        rpc_id: crate::ids::new_uuid(),
                        pending_num_requested: credit,
                    };
                    if !self.send(response).await {
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
                        if !r.topic_name.is_empty() && r.topic_name != topic {
                            return End::Error(status::error(Code::InvalidArgument, TOPIC_MISMATCH, "topic_name differs from the first request's"));
                        }
                        credit = match self.credit(credit, r.num_requested) {
                            Ok(c) => c,
                            Err(s) => return End::Error(s),
                        };
                        last_asked = Instant::now();
                    }
                    Ok(None) | Err(_) => return End::Quiet,
                },
                _ = appended.changed() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }
}
