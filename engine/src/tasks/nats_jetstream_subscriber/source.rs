//! The subscription that starts a writer flow: a durable pull consumer whose messages become
//! events. A message is acked only when its event completed every leaf; a failed event is naked
//! with the configured backoff; at `max_deliver` it is terminated and recorded as failed on its
//! run. Messages in flight are bounded by `max_ack_pending`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

use super::assemble::{Assembler, Held};
use super::config::NatsSubscriberConfig;
use super::settle::{SETTLE_TIMEOUT, Settle, Settler, bounded, is_last_delivery, record_failure};
use crate::bus::registry::BusRegistry;
use crate::bus::wire::{self, Part};
use crate::bus::{BusError, Consumer, ConsumerSpec, SharedBus, StreamSpec};
use crate::env::EnvLookup;
use crate::flow::template::Context;
use crate::run::Ledger;
use crate::runtime::processor::{BoxFuture, TaskError};
use crate::runtime::source::{Source, SourceContext, Stopping};
use crate::runtime::token::{Outcome, Token};

/// JetStream's defaults, so an unset key means what it means on a NATS server.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_ACK_PENDING: usize = 256;
pub const DEFAULT_FETCH_BATCH: usize = 16;
/// How long one fetch waits for messages before checking for shutdown.
const FETCH_WAIT: Duration = Duration::from_secs(1);
/// Waits between attempts to reach the bus at start or after errors.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

pub struct NatsSubscriberSource {
    pub flow: String,
    pub task: String,
    pub config: NatsSubscriberConfig,
    pub registry: Arc<BusRegistry>,
    pub ledger: Arc<Ledger>,
    pub env: EnvLookup,
}

impl NatsSubscriberSource {
    fn ack_wait(&self) -> Duration {
        self.config.ack_timeout.map_or(DEFAULT_ACK_TIMEOUT, |d| d.0)
    }

    fn max_ack_pending(&self) -> usize {
        self.config.max_ack_pending.map_or(DEFAULT_MAX_ACK_PENDING, |n| n.get())
    }

    fn url(&self) -> Result<String, BusError> {
        let ctx = Context { event: None, env: &*self.env };
        match &self.config.url {
            Some(t) => t.render_string(&ctx).map_err(|e| BusError::Unsupported(e.to_string())),
            None => Ok(String::new()),
        }
    }

    /// Connects, ensures the stream and binds the durable consumer.
    async fn connect(&self) -> Result<Box<dyn Consumer>, BusError> {
        let url = self.url()?;
        let bus: SharedBus = self.registry.bus(&url, self.config.credentials_path.as_deref()).await?;
        let stream = match &self.config.stream {
            Some(c) => {
                let spec = StreamSpec::from_config(c)?;
                if c.create_or_update {
                    bus.ensure_stream(&spec).await?;
                }
                spec.name
            }
            None => bus
                .stream_for_subject(&self.config.subject)
                .await?
                .ok_or_else(|| BusError::NoStreamForSubject(self.config.subject.clone()))?,
        };
        let spec = ConsumerSpec {
            stream,
            durable_name: self.config.durable_name.clone(),
            filter_subject: self.config.subject.clone(),
            ack_wait: self.ack_wait(),
            max_deliver: self.config.max_deliver.map(|n| n.get()),
            max_ack_pending: self.max_ack_pending(),
        };
        bus.consumer(&spec).await
    }

    /// Connects, retrying with backoff until it works or the flow stops.
    async fn connect_until_ready(&self, ctx: &SourceContext) -> Option<Box<dyn Consumer>> {
        let mut wait = RETRY_FIRST;
        loop {
            match self.connect().await {
                Ok(c) => {
                    ctx.listening();
                    return Some(c);
                }
                Err(e) if e.is_transient() || matches!(e, BusError::NoStream(_) | BusError::NoStreamForSubject(_)) => {
                    tracing::warn!(flow = self.flow, task = self.task, error = %e, retry_in = ?wait, "cannot subscribe yet");
                    ctx.waiting(format!("cannot subscribe to `{}` yet ({e}); trying again", self.config.subject));
                }
                Err(e) => {
                    tracing::error!(flow = self.flow, task = self.task, error = %e, retry_in = ?wait, "cannot subscribe");
                    ctx.waiting(format!("cannot subscribe to `{}` ({e}); trying again", self.config.subject));
                }
            }
            tokio::select! {
                () = ctx.shutdown.cancelled() => return None,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    async fn run_inner(self: Box<Self>, mut ctx: SourceContext) -> Result<(), TaskError> {
        let Some(mut consumer) = self.connect_until_ready(&ctx).await else { return Ok(()) };
        ctx.ready();
        tracing::info!(flow = self.flow, task = self.task, subject = self.config.subject, "subscribed");
        let permits = Arc::new(Semaphore::new(self.max_ack_pending()));
        let fetch_batch = self.config.fetch_batch.map_or(DEFAULT_FETCH_BATCH, |n| n.get());
        let (settle_tx, settle_rx) = mpsc::unbounded_channel::<Settle>();
        let settler = Settler {
            flow: self.flow.clone(),
            max_deliver: self.config.max_deliver.map(|n| n.get()),
            backoff: self.config.backoff.iter().map(|d| d.0).collect(),
            ledger: self.ledger.clone(),
            settle_timeout: SETTLE_TIMEOUT,
        };
        tokio::spawn(settler.run(settle_rx));
        let mut assembler = Assembler::default();
        let mut errors = 0u32;
        while !ctx.shutdown.is_cancelled() {
            // Wait for room before fetching, so nothing fetched has to wait in memory unacked.
            let free = tokio::select! {
                () = ctx.shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => p.map_err(|e| TaskError::Fatal(e.to_string()))?,
            };
            drop(free);
            let room = permits.available_permits().min(fetch_batch).max(1);
            let batch = tokio::select! {
                () = ctx.shutdown.cancelled() => break,
                r = consumer.fetch(room, FETCH_WAIT) => r,
            };
            let messages = match batch {
                Ok(m) => {
                    errors = 0;
                    m
                }
                Err(e) => {
                    errors += 1;
                    let wait = (RETRY_FIRST * 2u32.saturating_pow(errors.min(6))).min(RETRY_MAX);
                    tracing::warn!(flow = self.flow, error = %e, retry_in = ?wait, "fetch failed");
                    tokio::time::sleep(wait).await;
                    if errors >= 3 {
                        match self.connect_until_ready(&ctx).await {
                            Some(c) => consumer = c,
                            None => break,
                        }
                    }
                    continue;
                }
            };
            for message in messages {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    // Cannot happen (we fetched no more than the room); if it did, the message
                    // is redelivered after the ack wait.
                    continue;
                };
                let fallback = format!("seq-{}", message.stream_sequence);
                let part = match Part::from_message(&message.headers, message.payload.clone(), &fallback) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(flow = self.flow, subject = message.subject, error = %e, "undecodable message; terminating it");
                        let _ = bounded(SETTLE_TIMEOUT, message.ack.term()).await;
                        continue;
                    }
                };
                tracing::debug!(
                    flow = self.flow,
                    event = part.event_id,
                    part = part.index,
                    parts = part.count,
                    seq = message.stream_sequence,
                    delivery = message.delivered,
                    "received"
                );
                let Some(parts) = assembler.add(Held { part, message, permit }) else { continue };
                let max_deliver = self.config.max_deliver.map(|n| n.get());
                if emit_parts(&ctx, parts, &settle_tx, &self.flow, &self.ledger, max_deliver).await.is_err() {
                    return Ok(());
                }
            }
            for id in assembler.expire(self.ack_wait() * 2) {
                tracing::warn!(
                    flow = self.flow,
                    event = id,
                    "parts of a split event did not all arrive; waiting for redelivery"
                );
            }
        }
        tracing::info!(flow = self.flow, incomplete = assembler.incomplete(), "subscription stopped");
        Ok(())
    }
}

/// Emits the event `parts` carry, with a token that settles all its messages; `Err` when the flow
/// is stopping.
async fn emit_parts(
    ctx: &SourceContext,
    parts: Vec<Held>,
    settle: &mpsc::UnboundedSender<Settle>,
    flow: &str,
    ledger: &Arc<Ledger>,
    max_deliver: Option<u32>,
) -> Result<(), Stopping> {
    let subject = parts[0].message.subject.clone();
    let mut decoded: Vec<Part> = Vec::with_capacity(parts.len());
    let mut held = Vec::with_capacity(parts.len());
    for h in parts {
        decoded.push(h.part);
        held.push((h.message, h.permit));
    }
    let event = match wire::assemble(&decoded, &subject) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(flow, subject, error = %e, "undecodable event; terminating its messages");
            for (m, _) in held {
                let _ = bounded(SETTLE_TIMEOUT, m.ack.term()).await;
            }
            return Ok(());
        }
    };
    // A redelivery of a batch this flow already wrote (its ack was lost): acknowledged, dropped.
    if let Ok(Some((run, seq))) = ledger.batch_of(&event.meta)
        && ledger.is_written(&run, flow, seq).unwrap_or(false)
    {
        tracing::debug!(flow, run = %run, batch = seq, "batch already written; dropping the redelivery");
        for (m, _) in held {
            let _ = bounded(SETTLE_TIMEOUT, m.ack.ack()).await;
        }
        return Ok(());
    }
    let delivered = held.iter().map(|(m, _)| m.delivered).max().unwrap_or(1);
    let tx = settle.clone();
    let (id, meta) = (event.id.clone(), event.meta.clone());
    let last = is_last_delivery(max_deliver, delivered);
    let (flow, ledger) = (flow.to_string(), ledger.clone());
    let token = Token::new(move |outcome| {
        if outcome == Outcome::Abandoned && last {
            // The bus will not deliver it again. Recorded here, synchronously, because a token
            // is abandoned as the engine stops, when the settler may not get to run any more.
            let message = format!(
                "flow `{flow}`: event `{id}` was abandoned at shutdown on its last allowed delivery \
                 ({delivered} of max_deliver); the bus will not deliver it again"
            );
            tracing::error!(flow, event = id, deliveries = delivered, "abandoned on its last allowed delivery");
            record_failure(&ledger, &flow, &meta, &id, message);
        }
        // The settler outlives every token; if it is gone the process is exiting and the
        // messages are redelivered after the ack wait.
        let _ = tx.send(Settle { outcome, messages: held, delivered, event_id: id, meta });
    });
    ctx.emit(event, token).await
}

impl Source for NatsSubscriberSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), TaskError>> {
        Box::pin(self.run_inner(ctx))
    }
}
