//! Publishing events: encode (splitting what exceeds `max_payload`), publish each message with its
//! deterministic id, and complete the event only when the bus acknowledged every message.
//!
//! As a leaf (the seed's case) the publisher keeps up to `max_in_flight` events awaiting their acks
//! at once: `process` returns as soon as the publish is under way, and a deferred token completes
//! the event when the acks arrive. With tasks after it, it waits for the acks and then passes the
//! event on, so downstream only ever sees published events.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};

use super::config::NatsPublisherConfig;
use crate::bus::registry::BusRegistry;
use crate::bus::{BusError, Outgoing, PubAck, SharedBus, StreamSpec, wire};
use crate::env::EnvLookup;
use crate::event::Event;
use crate::run::{Ledger, RunId, StoredBatch};
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};

/// JetStream's own default wait for a publish ack.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;
/// Attempts per message on a transient failure (lost connection, timeout), with backoff between
/// them from 100 ms doubling to 5 s: about 20 s, enough to ride out a server restart.
const PUBLISH_ATTEMPTS: u32 = 8;
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

pub struct NatsPublisher {
    pub flow: String,
    pub task: String,
    config: NatsPublisherConfig,
    stream: Option<StreamSpec>,
    ack_timeout: Duration,
    registry: Arc<BusRegistry>,
    ledger: Arc<Ledger>,
    env: EnvLookup,
    in_flight: Arc<Semaphore>,
    /// Buses (by url) whose stream this task has already created or checked.
    streams_ready: Mutex<HashSet<String>>,
}

impl NatsPublisher {
    pub fn new(
        flow: &str,
        task: &str,
        config: NatsPublisherConfig,
        registry: Arc<BusRegistry>,
        ledger: Arc<Ledger>,
        env: EnvLookup,
    ) -> Result<Self, BusError> {
        let stream = config.stream.as_ref().map(StreamSpec::from_config).transpose()?;
        let max_in_flight = config.max_in_flight.map_or(DEFAULT_MAX_IN_FLIGHT, |n| n.get());
        Ok(Self {
            flow: flow.into(),
            task: task.into(),
            ack_timeout: config.ack_timeout.map_or(DEFAULT_ACK_TIMEOUT, |d| d.0),
            stream,
            config,
            registry,
            ledger,
            env,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            streams_ready: Mutex::new(HashSet::new()),
        })
    }

    async fn bus_for(&self, event: &Event) -> Result<(SharedBus, String), TaskError> {
        let render = |t| event.render(t, &self.env).map_err(|e| TaskError::Fatal(e.to_string()));
        let url = self.config.url.as_ref().map(render).transpose()?.unwrap_or_default();
        let subject = render(&self.config.subject)?;
        let bus = self.registry.bus(&url, self.config.credentials_path.as_deref()).await.map_err(classify)?;
        let mut ready = self.streams_ready.lock().await;
        if !ready.contains(&url) {
            if let Some(spec) = &self.stream {
                let create = self.config.stream.as_ref().is_some_and(|s| s.create_or_update);
                if create {
                    bus.ensure_stream(spec).await.map_err(classify)?;
                } else if !bus.stream_exists(&spec.name).await.map_err(classify)? {
                    return Err(TaskError::Retryable(BusError::NoStream(spec.name.clone()).to_string()));
                }
            }
            ready.insert(url);
        }
        Ok((bus, subject))
    }
}

fn classify(e: BusError) -> TaskError {
    if e.is_transient() { TaskError::Retryable(e.to_string()) } else { TaskError::Fatal(e.to_string()) }
}

/// Publishes every message in order, retrying transient failures; returns the bus's
/// acknowledgements, in order (a duplicate's names where the bus already had it).
async fn publish_all(bus: &SharedBus, messages: Vec<Outgoing>, ack_timeout: Duration) -> Result<Vec<PubAck>, BusError> {
    let mut acks = Vec::with_capacity(messages.len());
    for message in messages {
        let mut wait = FIRST_RETRY;
        let mut attempt = 1;
        loop {
            match bus.publish(message.clone(), ack_timeout).await {
                Ok(ack) => {
                    acks.push(ack);
                    break;
                }
                Err(e) if e.is_transient() && attempt < PUBLISH_ATTEMPTS => {
                    tracing::warn!(msg_id = message.msg_id, attempt, error = %e, retry_in = ?wait, "publish failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_RETRY);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(acks)
}

/// Records the bus's acknowledgement of a run's batch and where the bus stored it, durably,
/// before the event completes; returns how many of its messages were duplicates.
fn record_published(
    ledger: &Ledger,
    batch: Option<&(RunId, u64)>,
    subject: &str,
    acks: &[PubAck],
) -> Result<usize, String> {
    let duplicates = acks.iter().filter(|a| a.duplicate).count();
    let Some((run, seq)) = batch else { return Ok(duplicates) };
    crate::fault::point("publish.acked");
    let stored = acks.first().map(|first| StoredBatch {
        stream: first.stream.clone(),
        sequences: acks.iter().map(|a| a.sequence).collect(),
    });
    ledger
        .batch_stored(run, *seq, subject, stored)
        .map(|_| duplicates)
        .map_err(|e| format!("state store: recording batch {seq} of run {run} as published: {e}"))
}

impl Processor for NatsPublisher {
    #[tracing::instrument(name = "nats_publish", skip_all, fields(flow = %self.flow, task = %self.task, event = %event.id))]
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let (bus, subject) = self.bus_for(&event).await?;
            let messages =
                wire::encode(&event, &subject, bus.max_payload()).map_err(|e| TaskError::Fatal(e.to_string()))?;
            let parts = messages.len();
            let batch = self.ledger.batch_of(&event.meta)?;
            let permit = self.in_flight.clone().acquire_owned().await.map_err(|e| TaskError::Fatal(e.to_string()))?;
            if !out.children.is_empty() {
                let acks = publish_all(&bus, messages, self.ack_timeout).await.map_err(classify)?;
                drop(permit);
                let duplicates =
                    record_published(&self.ledger, batch.as_ref(), &subject, &acks).map_err(TaskError::Fatal)?;
                crate::fault::point("publish.recorded");
                tracing::debug!(subject, parts, duplicates, "published");
                return out.emit(event).await;
            }
            let Some(token) = out.defer() else { return Ok(()) };
            let (ack_timeout, task, id) = (self.ack_timeout, self.task.clone(), event.id.clone());
            let ledger = self.ledger.clone();
            tokio::spawn(async move {
                let result = publish_all(&bus, messages, ack_timeout).await;
                drop(permit);
                match result
                    .map_err(|e| e.to_string())
                    .and_then(|acks| record_published(&ledger, batch.as_ref(), &subject, &acks))
                {
                    Ok(duplicates) => {
                        crate::fault::point("publish.recorded");
                        tracing::debug!(event = id, subject, parts, duplicates, "published");
                        token.complete();
                    }
                    Err(e) => {
                        tracing::error!(event = id, subject, error = %e, "publish failed; giving up on the event");
                        token.fail(&task, e);
                    }
                }
            });
            Ok(())
        })
    }
}
