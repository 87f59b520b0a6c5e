//! Connecting to an engine's control API: a Unix socket path or a TCP `HOST:PORT`, with the
//! bearer token when the engine requires one.

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::control_client::ControlClient;

/// Where an engine's control API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    /// `HOST:PORT`.
    Tcp(String),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Tcp(addr) => f.write_str(addr),
        }
    }
}

impl Address {
    /// A path (anything with a `/`, or an existing file) is a socket; otherwise `HOST:PORT`.
    pub fn parse(text: &str) -> Address {
        if text.contains('/') || std::path::Path::new(text).exists() {
            Address::Unix(PathBuf::from(text))
        } else {
            Address::Tcp(text.to_owned())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to the control API at {address}: {source}")]
    Connect { address: String, source: tonic::transport::Error },
    #[error("`{0}` is not a control API address (HOST:PORT or a socket path)")]
    Address(String),
    #[error("the control token is not valid header text")]
    Token,
}

/// Adds `authorization: Bearer <token>` to every request when a token is set.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client of the control API.
pub type Client = ControlClient<InterceptedService<Channel, Bearer>>;

/// Connects now (not lazily), so "no engine there" is known before the first call.
pub async fn connect(address: &Address, token: Option<&str>) -> Result<Client, ConnectError> {
    let bearer = match token {
        Some(t) => Some(format!("Bearer {t}").parse::<MetadataValue<Ascii>>().map_err(|_| ConnectError::Token)?),
        None => None,
    };
    let channel = match address {
        Address::Tcp(addr) => {
            let endpoint =
                Endpoint::from_shared(format!("http://{addr}")).map_err(|_| ConnectError::Address(addr.clone()))?;
            endpoint.connect().await
        }
        Address::Unix(path) => {
            let path = path.clone();
            // The URI is required by the API but unused: the connector dials the socket.
            Endpoint::from_static("http://control.sock")
                .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                    let path = path.clone();
                    async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
                }))
                .await
        }
    }
    .map_err(|source| ConnectError::Connect { address: address.to_string(), source })?;
    Ok(ControlClient::with_interceptor(channel, Bearer(bearer)))
}
