//! The control API of a running engine (`bulkflow run`, `bulkflow demo`): served on a Unix socket
//! in the state directory (mode 0600) and, when configured, on TCP. See `auth` for who may call.

pub mod auth;
pub mod logs;
pub mod metrics;
pub mod service;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulkflow_control_proto::SOCKET_NAME;
use bulkflow_control_proto::control_server::ControlServer;
use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::flow::Flow;
use bulkflow_engine::run::Ledger;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use self::service::ControlService;

/// The largest request the control API reads: its requests are a run id, a flow name and a
/// reason, so anything near this is not a request of ours.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Calls one connection may have in flight at once; more wait their turn.
const MAX_CALLS_PER_CONNECTION: usize = 16;

/// The control socket of a state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("cannot listen on {what}: {source}")]
    Listen { what: String, source: std::io::Error },
    /// `/metrics` and the health checks carry no authentication, so they stay on this machine.
    #[error(
        "metrics_listen {0}: the metrics and health endpoints listen on a loopback address only (127.0.0.1 or ::1)"
    )]
    MetricsNotLoopback(std::net::SocketAddr),
}

/// The serving control API (and metrics, when configured); [`Control::stop`] ends them and
/// removes the socket.
pub struct Control {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    socket: PathBuf,
    metrics: Option<JoinHandle<()>>,
    ready: metrics::Readiness,
}

impl Control {
    /// Starts serving. A stale socket (an engine that died) is replaced: the state directory's
    /// lock, held by this process, says no other engine uses it.
    pub async fn start(
        config: &EngineConfig,
        ledger: Arc<Ledger>,
        flows: &[Flow],
        leading: Option<watch::Receiver<bool>>,
        waits: bulkflow_engine::runtime::source::Waits,
    ) -> Result<Control, ServeError> {
        let token = auth::load_token(config.control_token_file.as_deref(), std::env::var(auth::TOKEN_ENV).ok())?;
        if let Some(addr) = config.control_listen {
            auth::check_bind(addr, token.as_ref())?;
        }
        let stop = CancellationToken::new();
        let ready = metrics::Readiness::new(waits.clone(), ledger.store_health());
        let metrics = match config.metrics_listen {
            Some(addr) if !addr.ip().is_loopback() => return Err(ServeError::MetricsNotLoopback(addr)),
            Some(addr) => {
                let (_, task) = metrics::serve(addr, ledger.clone(), ready.clone())
                    .await
                    .map_err(|source| ServeError::Listen { what: addr.to_string(), source })?;
                Some(task)
            }
            None => None,
        };
        let service = ControlService {
            stop: stop.clone(),
            config: config.clone(),
            ledger,
            flows: Arc::new(flows.to_vec()),
            leading,
            logs: logs::LogRing::global().clone(),
            watchers: Arc::new(tokio::sync::Semaphore::new(service::MAX_WATCHERS)),
            waits,
        };
        let mut tasks = Vec::new();

        let socket = socket_path(&config.state_dir);
        let router = || {
            let server = ControlServer::new(service.clone()).max_decoding_message_size(MAX_REQUEST_BYTES);
            tonic::transport::Server::builder()
                .concurrency_limit_per_connection(MAX_CALLS_PER_CONNECTION)
                .add_service(InterceptedService::new(server, auth::interceptor(token.clone())))
        };
        // Without its socket the engine still exports: a path too long for a Unix socket (108
        // bytes) or a read-only state directory costs the local clients, not the exports.
        match bind_socket(&socket) {
            Ok(unix) => {
                let s = stop.clone();
                let server = router().serve_with_incoming_shutdown(UnixListenerStream::new(unix), s.cancelled_owned());
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = server.await {
                        tracing::error!(error = %e, "the control API's socket stopped");
                    }
                }));
                tracing::info!(socket = %socket.display(), "control API listening");
            }
            Err(e) => {
                tracing::warn!(error = %e, "no control socket: `bulkflow runs` and `bulkflow tui` cannot reach this engine")
            }
        }

        if let Some(addr) = config.control_listen {
            let listen_err = |source| ServeError::Listen { what: addr.to_string(), source };
            let tcp = tokio::net::TcpListener::bind(addr).await.map_err(listen_err)?;
            let bound = tcp.local_addr().map_err(listen_err)?;
            let s = stop.clone();
            let tcp_server = router().serve_with_incoming_shutdown(TcpListenerStream::new(tcp), s.cancelled_owned());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = tcp_server.await {
                    tracing::error!(error = %e, "the control API's TCP listener stopped");
                }
            }));
            tracing::info!(%bound, token = token.is_some(), "control API listening on TCP");
        }
        // The node started before the control API: serving it is the last step of a start.
        ready.set(true);
        Ok(Control { stop, tasks, socket, metrics, ready })
    }

    /// Stops serving. Watch streams end with the token; a client that holds a connection
    /// open anyway is cut off after a second rather than holding up the engine's stop.
    pub async fn stop(self) {
        self.ready.set(false);
        self.stop.cancel();
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(1), task).await.is_err() {
                abort.abort();
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        if let Some(task) = self.metrics {
            task.abort();
        }
    }
}

/// Binds the socket (replacing a stale one) and makes it the engine's user's alone.
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, ServeError> {
    let err = |source| ServeError::Listen { what: path.display().to_string(), source };
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}
