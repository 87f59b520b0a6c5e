//! The bus on a real NATS JetStream server (`async-nats`): for several nodes, or whenever a flow's
//! url names a server.

pub mod credentials;
#[cfg(test)]
mod tests;

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{ConnectOptions, HeaderMap};
use futures_util::StreamExt;

pub use credentials::{Auth, ClientTls, NatsCredentials};

use super::spec::{DiscardPolicy, RetentionPolicy};
use super::{
    Acker, Bus, BusError, Consumer, ConsumerSpec, Delivered, Headers, MSG_ID_HEADER, Outgoing, PubAck, StreamSpec,
};
use crate::runtime::processor::BoxFuture;
use crate::tls::Trust;

/// How long connecting may take before the attempt fails (the caller retries).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a no-wait pull request may go unanswered (the server answers at once, in
/// milliseconds) before it counts as lost.
const NO_WAIT_ANSWER: Duration = Duration::from_secs(2);
/// How long past its expiry a waiting pull request may go unanswered before it counts as lost
/// (async-nats itself allows 5 s, then ends it as empty).
const WAIT_ANSWER_GRACE: Duration = Duration::from_secs(6);

#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus").field("server", &self.client.server_info().server_name).finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects to `url` with `auth`, over plain TCP unless the server or a `tls://` url asks for
    /// TLS. The url is not secret; auth material is never logged.
    pub async fn connect(url: &str, auth: &Auth) -> Result<Self, BusError> {
        Self::connect_tls(url, auth, &ClientTls::default(), &Trust::default()).await
    }

    /// Connects with TLS settings too: the credentials file's (`tls`) and the engine's roots.
    pub async fn connect_tls(url: &str, auth: &Auth, tls: &ClientTls, trust: &Trust) -> Result<Self, BusError> {
        let client = connect_client(url, auth, tls, trust).await?;
        Ok(Self::from_client(client))
    }

    pub fn from_client(client: async_nats::Client) -> Self {
        let mut js = jetstream::new(client.clone());
        // Callers bound each publish with their own ack timeout; the context's must not cut it short.
        js.set_timeout(Duration::from_secs(3600));
        Self { client, js }
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

/// A connected client: reconnects on its own after a server restart, forever. Whenever TLS is
/// used (the url says `tls://`, the credentials name TLS files, or the server requires it) the
/// server's certificate is verified against the engine's trust and the credentials' CA.
pub async fn connect_client(
    url: &str,
    auth: &Auth,
    tls: &ClientTls,
    trust: &Trust,
) -> Result<async_nats::Client, BusError> {
    let config = trust
        .rustls(tls.ca_file.as_deref(), tls.client.as_ref().map(|(c, k)| (c.as_path(), k.as_path())))
        .map_err(|e| BusError::Unsupported(format!("NATS TLS: {e}")))?;
    let options = ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        .tls_client_config(config)
        .require_tls(tls.is_asked() || url.trim_start().starts_with("tls://"));
    let options = match auth {
        Auth::None => options,
        Auth::NkeySeed(seed) => options.nkey(seed.clone()),
        Auth::CredsFile(path) => options
            .credentials_file({
                crate::credentials::permissions::warn_if_loose(path);
                path
            })
            .await
            .map_err(|e| BusError::Unsupported(format!("cannot read NATS creds file {}: {e}", path.display())))?,
        Auth::UserPassword { user, password } => options.user_and_password(user.clone(), password.clone()),
        Auth::Token(token) => options.token(token.clone()),
    };
    options.connect(url).await.map_err(|e| BusError::nats("connecting to NATS", e))
}

fn stream_config(spec: &StreamSpec) -> stream::Config {
    let limit = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
    stream::Config {
        name: spec.name.clone(),
        description: spec.description.clone(),
        subjects: spec.subjects.clone(),
        max_age: spec.max_age.unwrap_or_default(),
        max_bytes: limit(spec.max_bytes),
        max_messages: limit(spec.max_messages),
        retention: match spec.retention {
            RetentionPolicy::Limits => stream::RetentionPolicy::Limits,
            RetentionPolicy::Interest => stream::RetentionPolicy::Interest,
            RetentionPolicy::WorkQueue => stream::RetentionPolicy::WorkQueue,
        },
        discard: match spec.discard {
            DiscardPolicy::Old => stream::DiscardPolicy::Old,
            DiscardPolicy::New => stream::DiscardPolicy::New,
        },
        duplicate_window: spec.effective_duplicate_window(),
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

fn to_header_map(msg: &Outgoing) -> Result<HeaderMap, BusError> {
    let mut map = HeaderMap::new();
    for (name, value) in &msg.headers {
        check_header(name, value)?;
        map.append(name.as_str(), value.as_str());
    }
    if !msg.msg_id.is_empty() {
        check_header(MSG_ID_HEADER, &msg.msg_id)?;
        map.insert(MSG_ID_HEADER, msg.msg_id.as_str());
    }
    Ok(map)
}

/// async-nats panics on a header value with CR or LF; refuse it as an error instead.
fn check_header(name: &str, value: &str) -> Result<(), BusError> {
    if name.is_empty() || name.contains(['\r', '\n', ':', ' ']) || value.contains(['\r', '\n']) {
        return Err(BusError::Invalid {
            what: "header",
            value: name.to_string(),
            why: "header names cannot be empty or contain CR, LF, `:` or spaces; values cannot contain CR or LF",
        });
    }
    Ok(())
}

fn from_header_map(map: Option<&HeaderMap>) -> Headers {
    let Some(map) = map else { return Vec::new() };
    let mut headers: Headers = map
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |v| (name.to_string(), v.as_str().to_string())))
        .collect();
    headers.sort();
    headers
}

impl Bus for NatsBus {
    fn ensure_stream(&self, spec: &StreamSpec) -> BoxFuture<'_, Result<(), BusError>> {
        let config = stream_config(spec);
        Box::pin(async move {
            match self.js.get_stream(&config.name).await {
                Ok(_) => {
                    self.js.update_stream(&config).await.map(drop).map_err(|e| BusError::nats("updating the stream", e))
                }
                Err(e) if is_not_found(&e) => {
                    self.js.create_stream(config).await.map(drop).map_err(|e| BusError::nats("creating the stream", e))
                }
                Err(e) => Err(BusError::nats("looking up the stream", e)),
            }
        })
    }

    fn stream_exists(&self, name: &str) -> BoxFuture<'_, Result<bool, BusError>> {
        let name = name.to_string();
        Box::pin(async move {
            match self.js.get_stream(&name).await {
                Ok(_) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(BusError::nats("looking up the stream", e)),
            }
        })
    }

    fn stream_for_subject(&self, subject: &str) -> BoxFuture<'_, Result<Option<String>, BusError>> {
        let subject = subject.to_string();
        Box::pin(async move {
            match self.js.stream_by_subject(subject).await {
                Ok(name) => Ok(Some(name)),
                Err(e) if matches!(e.kind(), jetstream::context::GetStreamByNameErrorKind::NotFound) => Ok(None),
                Err(e) => Err(BusError::nats("looking up the stream for a subject", e)),
            }
        })
    }

    fn publish(&self, msg: Outgoing, timeout: Duration) -> BoxFuture<'_, Result<PubAck, BusError>> {
        Box::pin(async move {
            let headers = to_header_map(&msg)?;
            let size = msg.payload.len() + msg.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>();
            let max = self.max_payload();
            if size > max {
                return Err(BusError::TooLarge { size, max });
            }
            let send = async {
                let ack = self
                    .js
                    .publish_with_headers(msg.subject.clone(), headers, msg.payload.clone())
                    .await
                    .map_err(|e| BusError::nats("publishing", e))?;
                ack.await.map_err(|e| BusError::nats("awaiting the publish ack", e))
            };
            let ack = tokio::time::timeout(timeout, send).await.map_err(|_| BusError::Timeout(timeout))??;
            Ok(PubAck { stream: ack.stream, sequence: ack.sequence, duplicate: ack.duplicate })
        })
    }

    fn missing<'a>(&'a self, stream: &'a str, sequences: &'a [u64]) -> BoxFuture<'a, Result<Vec<u64>, BusError>> {
        Box::pin(async move {
            let mut handle = match self.js.get_stream(stream).await {
                Ok(s) => s,
                Err(e) if is_not_found(&e) => return Ok(sequences.to_vec()),
                Err(e) => return Err(BusError::nats("looking up the stream", e)),
            };
            let state = handle.info().await.map_err(|e| BusError::nats("reading the stream's state", e))?.state.clone();
            let mut missing = Vec::new();
            for &seq in sequences {
                let in_range = seq >= state.first_sequence && seq <= state.last_sequence;
                // Inside the range a message can still have been deleted on its own (interest
                // retention, a delete by hand): ask for it when the stream has any such gaps.
                let held = in_range
                    && (state.deleted_count.unwrap_or(0) == 0
                        || match handle.get_raw_message(seq).await {
                            Ok(_) => true,
                            Err(e) if matches!(e.kind(), jetstream::stream::RawMessageErrorKind::NoMessageFound) => {
                                false
                            }
                            Err(e) => return Err(BusError::nats("looking up a message", e)),
                        });
                if !held {
                    missing.push(seq);
                }
            }
            Ok(missing)
        })
    }

    fn consumer(&self, spec: &ConsumerSpec) -> BoxFuture<'_, Result<Box<dyn Consumer>, BusError>> {
        let spec = spec.clone();
        Box::pin(async move {
            spec.validate()?;
            let stream = self.js.get_stream(&spec.stream).await.map_err(|e| {
                if is_not_found(&e) {
                    BusError::NoStream(spec.stream.clone())
                } else {
                    BusError::nats("looking up the stream", e)
                }
            })?;
            let config = consumer::pull::Config {
                durable_name: Some(spec.durable_name.clone()),
                filter_subject: spec.filter_subject.clone(),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: spec.ack_wait,
                max_deliver: spec.max_deliver.map_or(-1, i64::from),
                max_ack_pending: i64::try_from(spec.max_ack_pending).unwrap_or(i64::MAX),
                ..Default::default()
            };
            // Create, or update an existing durable to these settings (its position is kept).
            let consumer = match stream.create_consumer(config.clone()).await {
                Ok(c) => c,
                Err(_) => {
                    let _ =
                        stream.update_consumer(config).await.map_err(|e| BusError::nats("updating the consumer", e))?;
                    stream
                        .get_consumer(&spec.durable_name)
                        .await
                        .map_err(|e| BusError::Nats { op: "binding to the consumer", source: e })?
                }
            };
            Ok(Box::new(NatsConsumer { consumer }) as Box<dyn Consumer>)
        })
    }

    fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }
}

fn is_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j) if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

struct NatsConsumer {
    consumer: consumer::Consumer<consumer::pull::Config>,
}

impl NatsConsumer {
    async fn collect(
        &self,
        batch: Result<consumer::pull::Batch, impl std::error::Error + Send + Sync + 'static>,
        out: &mut Vec<Delivered>,
    ) -> Result<(), BusError> {
        let mut batch = batch.map_err(|e| BusError::nats("requesting messages", e))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| BusError::Nats { op: "receiving messages", source: e })?;
            let (stream_sequence, delivered) = match message.info() {
                Ok(info) => (info.stream_sequence, u32::try_from(info.delivered).unwrap_or(u32::MAX)),
                Err(e) => return Err(BusError::Nats { op: "reading message metadata", source: e }),
            };
            let (inner, acker) = message.split();
            out.push(Delivered {
                subject: inner.subject.to_string(),
                headers: from_header_map(inner.headers.as_ref()),
                payload: inner.payload,
                stream_sequence,
                delivered,
                ack: Box::new(NatsAcker(acker)),
            });
        }
        Ok(())
    }
}

impl Consumer for NatsConsumer {
    fn fetch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<Delivered>, BusError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            match self.fetch_into(max, wait, &mut out).await {
                Ok(()) => Ok(out),
                // What arrived before the failure is delivered (and settled) as usual; the next
                // fetch meets the failure again.
                Err(_) if !out.is_empty() => Ok(out),
                Err(e) => Err(e),
            }
        })
    }
}

impl NatsConsumer {
    async fn fetch_into(&self, max: usize, wait: Duration, out: &mut Vec<Delivered>) -> Result<(), BusError> {
        // What is there now, without waiting; if nothing, wait for one message (a pull for a
        // full batch would wait for all of it), then take what followed it.
        let request = self.consumer.fetch().max_messages(max).messages();
        let answered = self.collect_within(request, NO_WAIT_ANSWER, out).await?;
        if out.is_empty() && answered {
            let expires = wait.max(Duration::from_millis(10));
            let request = self.consumer.batch().max_messages(1).expires(expires).messages();
            self.collect_within(request, expires + WAIT_ANSWER_GRACE, out).await?;
            if !out.is_empty() && max > 1 {
                let request = self.consumer.fetch().max_messages(max - 1).messages();
                self.collect_within(request, NO_WAIT_ANSWER, out).await?;
            }
        }
        Ok(())
    }

    /// Collects what one pull request brings, waiting at most `limit` for the server to end it;
    /// `false` when it did not. async-nats waits for the end of a no-wait request forever, and
    /// some never end: one sent as the connection dropped (a server restart stopped the
    /// subscriber for good), or one nats-server 2.9 leaves unanswered after a message reached
    /// `max_deliver`. Such a request ends here with what arrived; the next fetch asks again.
    async fn collect_within<E: std::error::Error + Send + Sync + 'static>(
        &self,
        request: impl Future<Output = Result<consumer::pull::Batch, E>>,
        limit: Duration,
        out: &mut Vec<Delivered>,
    ) -> Result<bool, BusError> {
        match tokio::time::timeout(limit, async { self.collect(request.await, out).await }).await {
            Ok(result) => result.map(|()| true),
            Err(_) => {
                tracing::debug!(?limit, "a pull request went unanswered; fetching again");
                Ok(false)
            }
        }
    }
}

struct NatsAcker(jetstream::message::Acker);

impl NatsAcker {
    /// Double ack: the server confirms, so "acked" means the consumer recorded it.
    fn settle(self, kind: jetstream::AckKind, op: &'static str) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { self.0.double_ack_with(kind).await.map_err(|e| BusError::Nats { op, source: e }) })
    }
}

impl Acker for NatsAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        self.settle(jetstream::AckKind::Ack, "acking")
    }

    fn nak(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        self.settle(jetstream::AckKind::Nak(Some(delay)), "nak")
    }

    fn term(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        self.settle(jetstream::AckKind::Term, "terminating")
    }
}
