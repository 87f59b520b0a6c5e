//! Starting, running and stopping a simulator in-process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::Router;
use axum::routing::post;
use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::api_error::ApiError;
use crate::bulk::job::Job;
use crate::config::SimConfig;
use crate::data::{DataSpec, Dataset};
use crate::events::{EVENT_CAPACITY, JobEvent, JobState};
use crate::faults::{FaultConfig, Faults};
use crate::org::{Credentials, OrgIdentity};
use crate::state::{AppState, Settings};
use crate::stats::{Stats, StatsSnapshot};
use crate::store::persist::{DataSpecRecord, OrgFile, Persist};
use crate::store::results::Results;
use crate::{admin, bulk, gate, oauth};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("state directory {dir}: {source}")]
    State { dir: PathBuf, source: std::io::Error },
    #[error("data: {0}")]
    Data(#[from] crate::data::DataError),
    #[error("JWT key: {0}")]
    Key(String),
    #[error("the server stopped with an error: {0}")]
    Server(std::io::Error),
    #[error("{0}")]
    BigQuery(#[from] crate::bigquery::TableError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("a start-up task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A running simulator. Dropping it stops the server too; [`Simulator::shutdown`] also waits.
pub struct Simulator {
    addr: SocketAddr,
    url: String,
    credentials: Credentials,
    app: Arc<AppState>,
    pubsub_addr: SocketAddr,
    pubsub: crate::pubsub::Started,
    bigquery: crate::bigquery::BigQuery,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Simulator {
    /// Binds, loads or creates the org (from `state_dir` when set), generates the data and serves.
    /// Returns once the listener is bound, so [`Simulator::url`] is immediately usable.
    pub async fn start(config: SimConfig) -> Result<Simulator, SimError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr: config.listen, source })?;
        let pubsub_listener = tokio::net::TcpListener::bind(config.pubsub_listen)
            .await
            .map_err(|source| SimError::Bind { addr: config.pubsub_listen, source })?;
        let pubsub_addr =
            pubsub_listener.local_addr().map_err(|source| SimError::Bind { addr: config.pubsub_listen, source })?;
        let identity_tls = config.tls.as_ref().map(crate::tls::TlsFiles::load).transpose().map_err(SimError::Tls)?;
        let scheme = if identity_tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let bigquery_listener = tokio::net::TcpListener::bind(config.bigquery_listen)
            .await
            .map_err(|source| SimError::Bind { addr: config.bigquery_listen, source })?;

        let state_err = |source| SimError::State { dir: config.state_dir.clone().unwrap_or_default(), source };
        let persist = config.state_dir.as_deref().map(Persist::open).transpose().map_err(state_err)?;
        // Key generation and file I/O: off the async threads.
        let (identity, spec) = {
            let (config, persist) = (config.clone(), persist.clone());
            tokio::task::spawn_blocking(move || load_or_create_org(&config, persist.as_ref())).await?
        }
        .map_err(state_err)?;
        let public_key = identity.public_key().map_err(|e| SimError::Key(e.to_string()))?;

        let dataset = {
            let (spec, persist) = (spec.clone(), persist.clone());
            tokio::task::spawn_blocking(move || build_dataset(&spec, persist.as_ref())).await?
        }
        .map_err(|e| match e {
            DatasetError::Data(e) => SimError::Data(e),
            DatasetError::Io(e) => state_err(e),
        })?;
        let jobs = match persist.clone() {
            Some(p) => tokio::task::spawn_blocking(move || load_jobs(&p)).await?.map_err(state_err)?,
            None => HashMap::new(),
        };
        let tokens = match &persist {
            Some(p) => p.load_tokens().map_err(state_err)?.unwrap_or_default(),
            None => HashMap::new(),
        };

        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let app = Arc::new(AppState {
            settings: Settings {
                job_latency: config.job_latency,
                retention: config.retention,
                deleted_window: config.deleted_window,
                max_page_records: config.max_page_records.max(1),
                list_page_size: config.list_page_size.max(1),
            },
            identity,
            public_key,
            base_url: url.clone(),
            data: Arc::new(RwLock::new(dataset)),
            jobs: Mutex::new(jobs),
            tokens: Mutex::new(tokens),
            faults: Faults::new(config.faults.clone()),
            stats: Stats::default(),
            events,
            publisher: OnceLock::new(),
            managed: crate::pubsub::managed::Registry::open(persist.clone()).map_err(state_err)?,
            persist,
        });

        let (shutdown, _) = watch::channel(false);
        if config.change_rate > 0.0 || config.delete_rate > 0.0 {
            let rates = crate::changes::Rates { change: config.change_rate, delete: config.delete_rate };
            tokio::spawn(crate::changes::run(app.clone(), rates, shutdown.subscribe()));
        }
        let pubsub = crate::pubsub::start(
            app.clone(),
            pubsub_listener,
            crate::pubsub::PubSubSettings { keepalive: config.pubsub_keepalive, idle_close: config.pubsub_idle_close },
            config.replay_retention,
            config.partial_result_events,
            identity_tls.as_ref().map(|t| tonic::transport::Identity::from_pem(&t.cert_pem, &t.key_pem)),
            shutdown.subscribe(),
        )
        .map_err(|e| SimError::Tls(format!("Pub/Sub: {e}")))?;
        // Jobs move only once their events have somewhere to go: a restarted org's jobs in flight
        // complete at the clock's first tick, and an event emitted before the Pub/Sub server's
        // publisher is in place would reach no replay log (so the clock needs `publishing`).
        tokio::spawn(bulk::scheduler::run(app.clone(), shutdown.subscribe(), pubsub.publishing()));
        let bigquery = crate::bigquery::BigQuery::start(bigquery_listener, shutdown.subscribe())
            .map_err(|source| SimError::Bind { addr: config.bigquery_listen, source })?;
        for (id, schema) in &config.bigquery_tables {
            bigquery.create_table(id, schema)?;
        }
        let router = router(app.clone());
        let mut stop = shutdown.subscribe();
        let stopped = async move {
            let _ = stop.changed().await;
        };
        let server = match &identity_tls {
            None => tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(stopped).await }),
            Some(tls) => {
                let listener = crate::tls::TlsListener::new(listener, tls.config.clone())
                    .map_err(|source| SimError::Bind { addr: config.listen, source })?;
                tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(stopped).await })
            }
        };
        let credentials = Credentials {
            client_id: app.identity.client_id.clone(),
            client_secret: app.identity.client_secret.clone(),
            username: app.identity.username.clone(),
            password: app.identity.password.clone(),
            login_url: url.clone(),
            pubsub_url: Some(format!("{scheme}://{pubsub_addr}")),
            private_key_path: None,
            private_key_pem: app.identity.private_key_pem.clone(),
            org_id: app.identity.org_id.clone(),
        };
        tracing::info!(%url, pubsub = %pubsub_addr, org_id = %app.identity.org_id, "simulator listening");
        Ok(Simulator { addr, url, credentials, app, pubsub_addr, pubsub, bigquery, shutdown, server: Some(server) })
    }

    /// The managed event subscription named `developer_name`, with its committed position.
    pub fn managed_subscription(&self, developer_name: &str) -> Option<crate::pubsub::managed::Subscription> {
        self.app.managed.find("", developer_name)
    }

    /// `http://HOST:PORT` (`https://` with TLS): the login URL and the instance URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the Pub/Sub API (gRPC, plain HTTP/2) listens.
    pub fn pubsub_addr(&self) -> SocketAddr {
        self.pubsub_addr
    }

    /// What the Pub/Sub server did so far.
    pub fn pubsub_stats(&self) -> crate::pubsub::PubSubStatsSnapshot {
        self.pubsub.stats.snapshot()
    }

    /// The bus's latest replay id (opaque bytes, as subscribers see them).
    pub fn latest_replay_id(&self) -> Vec<u8> {
        crate::pubsub::log::encode(self.pubsub.log.latest())
    }

    /// The BigQuery fake: its address (`BIGQUERY_EMULATOR_HOST`), its tables.
    pub fn bigquery(&self) -> &crate::bigquery::BigQuery {
        &self.bigquery
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn org_id(&self) -> &str {
        &self.app.identity.org_id
    }

    /// Every record id of `object` the org holds now, so tests can compare an export with it.
    pub fn ids(&self, object: &str) -> Vec<String> {
        self.app.data.read().unwrap_or_else(|p| p.into_inner()).ids(object)
    }

    /// The same as `GET /__sim/stats`.
    pub fn stats(&self) -> StatsSnapshot {
        admin::snapshot(&self.app)
    }

    pub fn faults(&self) -> FaultConfig {
        self.app.faults.get()
    }

    /// The same as `POST /__sim/faults`.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.app.faults.set(faults);
    }

    /// Every job state change from now on (the Pub/Sub server turns them into `BulkApi2JobEvent`s).
    pub fn job_events(&self) -> broadcast::Receiver<JobEvent> {
        self.app.events.subscribe()
    }

    /// Where the Pub/Sub replay log is to live, when the org is persisted.
    pub fn replay_dir(&self) -> Option<PathBuf> {
        self.app.persist.as_ref().map(Persist::replay_dir)
    }

    /// Stops serving and waits for open connections to finish.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            server.await?.map_err(SimError::Server)?;
        }
        Ok(())
    }

    /// Serves until the server stops (it only stops on shutdown or an I/O error).
    pub async fn wait(mut self) -> Result<(), SimError> {
        if let Some(server) = self.server.take() {
            server.await?.map_err(SimError::Server)?;
        }
        Ok(())
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn router(app: Arc<AppState>) -> Router {
    let salesforce = Router::new()
        .route("/services/oauth2/token", post(oauth::token::token))
        .merge(bulk::routes())
        .merge(crate::tooling::routes())
        .merge(crate::deleted::routes())
        .merge(crate::describe::routes())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("HTTP Method '{method}' not allowed."),
            )
        })
        .layer(axum::middleware::from_fn_with_state(app.clone(), gate::gate));
    salesforce.merge(admin::routes()).with_state(app)
}

fn load_or_create_org(config: &SimConfig, persist: Option<&Persist>) -> std::io::Result<(OrgIdentity, DataSpecRecord)> {
    let stored = persist.map(Persist::load_org).transpose()?.flatten();
    let (mut identity, data) = match stored {
        Some(file) => {
            tracing::info!("reopening the persisted org; its data spec wins over --records/--seed/--start");
            (file.identity, file.data)
        }
        None => {
            let identity = OrgIdentity::create(config).map_err(std::io::Error::other)?;
            let start: DateTime<Utc> = config.start.unwrap_or_else(|| Utc::now().trunc_subsecs(0));
            let data = DataSpecRecord {
                records: config.records.clone(),
                seed: config.seed,
                start,
                spread_secs: config.spread.as_secs(),
            };
            (identity, data)
        }
    };
    identity.override_from(config);
    if let Some(persist) = persist {
        persist.save_org(&OrgFile { identity: identity.clone(), data: data.clone() })?;
    }
    Ok((identity, data))
}

enum DatasetError {
    Data(crate::data::DataError),
    Io(std::io::Error),
}

/// Generates the data and, for a persisted org, replays its logged changes on top.
fn build_dataset(spec: &DataSpecRecord, persist: Option<&Persist>) -> Result<Dataset, DatasetError> {
    let mut dataset = Dataset::try_generate(&DataSpec {
        records: spec.records.clone(),
        seed: spec.seed,
        start: spec.start,
        spread: std::time::Duration::from_secs(spec.spread_secs),
    })
    .map_err(DatasetError::Data)?;
    if let Some(persist) = persist {
        for change in persist.load_changes().map_err(DatasetError::Io)? {
            dataset.apply(change.batch());
        }
    }
    Ok(dataset)
}

fn load_jobs(persist: &Persist) -> std::io::Result<HashMap<String, Job>> {
    let records: Vec<crate::bulk::job::JobRecord> = persist.load_jobs()?;
    let mut jobs = HashMap::new();
    for record in records {
        let wants_rows =
            matches!(record.state, JobState::UploadComplete | JobState::InProgress | JobState::JobComplete);
        let results = if wants_rows {
            persist.load_results(&record.id)?.map(|rows| Arc::new(Results::Stored(rows)))
        } else {
            None
        };
        jobs.insert(record.id.clone(), Job { record, results, rendered: None });
    }
    Ok(jobs)
}
