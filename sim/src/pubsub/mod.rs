//! The Pub/Sub API (gRPC `eventbus.v1.PubSub`, plain HTTP/2): `BulkApi2JobEvent`s for every query
//! job, served from a replay log with Salesforce's flow control, keepalives, idle close and errors.

mod auth;
pub mod avro;
pub mod log;
pub mod managed;
mod pump;
pub mod registry;
mod service;
mod status;
mod subscribe;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bulkflow_pubsub_proto::pub_sub_server::PubSubServer;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;

use self::log::ReplayLog;
use crate::state::AppState;

pub use subscribe::MAX_CREDIT;

#[derive(Debug, Clone)]
pub struct PubSubSettings {
    pub keepalive: Duration,
    pub idle_close: Duration,
}

/// What the Pub/Sub server did, for tests to assert on.
#[derive(Debug, Default)]
pub struct PubSubStats {
    pub subscribes: AtomicU64,
    pub events_delivered: AtomicU64,
    pub keepalives: AtomicU64,
    pub idle_closes: AtomicU64,
    pub auth_errors: AtomicU64,
    pub replay_corrupted: AtomicU64,
    pub streams_dropped: AtomicU64,
    pub streams_frozen: AtomicU64,
    /// The most credit any stream's client asked to have outstanding (before the cap of 100).
    pub max_requested_credit: AtomicU64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubSubStatsSnapshot {
    pub subscribes: u64,
    pub events_delivered: u64,
    pub keepalives: u64,
    pub idle_closes: u64,
    pub auth_errors: u64,
    pub replay_corrupted: u64,
    pub streams_dropped: u64,
    pub streams_frozen: u64,
    pub max_requested_credit: u64,
}

impl PubSubStats {
    pub fn snapshot(&self) -> PubSubStatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PubSubStatsSnapshot {
            subscribes: get(&self.subscribes),
            events_delivered: get(&self.events_delivered),
            keepalives: get(&self.keepalives),
            idle_closes: get(&self.idle_closes),
            auth_errors: get(&self.auth_errors),
            replay_corrupted: get(&self.replay_corrupted),
            streams_dropped: get(&self.streams_dropped),
            streams_frozen: get(&self.streams_frozen),
            max_requested_credit: get(&self.max_requested_credit),
        }
    }
}

fn topic_not_found(name: &str) -> tonic::Status {
    status::error(tonic::Code::NotFound, status::TOPIC_NOT_FOUND, &format!("topic `{name}` does not exist"))
}

pub struct Started {
    pub log: Arc<ReplayLog>,
    pub stats: Arc<PubSubStats>,
}

/// Proof that job events reach the replay log from now on: what the job clock needs before it
/// moves a job, since an event emitted before the publisher is in place is lost to subscribers.
#[derive(Clone, Copy, Debug)]
pub struct Publishing(());

impl Started {
    pub fn publishing(&self) -> Publishing {
        Publishing(())
    }
}

/// Starts publishing job events to the log and serving the API on `listener`.
pub fn start(
    app: Arc<AppState>,
    listener: TcpListener,
    settings: PubSubSettings,
    retention: Duration,
    partial_results: bool,
    tls: Option<tonic::transport::Identity>,
    shutdown: watch::Receiver<bool>,
) -> Result<Started, tonic::transport::Error> {
    let log = match app.persist.as_ref().map(|p| ReplayLog::open(retention, &p.replay_dir())) {
        Some(Ok(log)) => log,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cannot open the persisted Pub/Sub replay log; this run's events are kept in memory only");
            ReplayLog::new(retention)
        }
        None => ReplayLog::new(retention),
    };
    let log = Arc::new(log);
    let stats = Arc::new(PubSubStats::default());
    let pump_log = log.clone();
    let publisher: crate::state::Publisher =
        Box::new(move |app, event| pump::publish_event(app, &pump_log, event, partial_results));
    if app.publisher.set(publisher).is_err() {
        tracing::warn!("a Pub/Sub server already publishes this org's job events; this one serves the same log");
    }
    let service =
        service::Service { app, log: log.clone(), settings, stats: stats.clone(), shutdown: shutdown.clone() };
    let mut stop = shutdown;
    let mut server = tonic::transport::Server::builder();
    if let Some(identity) = tls {
        server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    // Not awaited on shutdown: streams end on the shutdown signal themselves, and a server error
    // is logged rather than taking the REST API down with it.
    tokio::spawn(async move {
        let served = server
            .add_service(PubSubServer::new(service))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                let _ = stop.changed().await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the Pub/Sub server stopped with an error");
        }
    });
    Ok(Started { log, stats })
}
