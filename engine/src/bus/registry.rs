//! Which bus a flow's task talks to, and one shared connection per bus.
//!
//! The url a flow renders decides: empty or `embedded` means the embedded bus; anything else is a
//! NATS server. The flow's `url` wins over the credentials file's `url`; the file's is used when
//! the flow's renders empty. Every task of every flow that names the same server (and the same
//! credentials file) shares one connection, and the embedded bus is one instance per process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::embedded::EmbeddedBus;
use super::nats::NatsBus;
use super::nats::credentials::{Auth, ClientTls, NatsCredentials};
use super::{BusError, SharedBus};
use crate::credentials::CredentialsRoot;
use crate::tls::Trust;

/// The url value that selects the embedded bus explicitly.
pub const EMBEDDED: &str = "embedded";

/// Opens the embedded bus on first use, so a process whose flows all use NATS never creates it.
pub struct BusRegistry {
    state_dir: Option<PathBuf>,
    embedded: Mutex<Option<EmbeddedBus>>,
    credentials: CredentialsRoot,
    trust: Trust,
    connections: tokio::sync::Mutex<HashMap<(String, Option<String>), SharedBus>>,
}

impl std::fmt::Debug for BusRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusRegistry").field("state_dir", &self.state_dir).finish_non_exhaustive()
    }
}

/// Where a task's bus is, once its url and credentials are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Embedded,
    Nats { url: String },
}

impl BusRegistry {
    /// `state_dir`: where the embedded bus lives (`None`: no embedded bus, e.g. in a tool that
    /// only reads the ledger).
    pub fn new(state_dir: Option<PathBuf>, credentials: CredentialsRoot) -> Self {
        Self {
            state_dir,
            embedded: Mutex::new(None),
            credentials,
            trust: Trust::default(),
            connections: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The roots TLS connections to NATS trust besides a credentials file's `tls_ca_file`.
    pub fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// A registry whose embedded bus is `bus` (tests, and processes that opened it already).
    pub fn with_embedded(bus: EmbeddedBus, credentials: CredentialsRoot) -> Self {
        let registry = Self::new(None, credentials);
        *registry.embedded.lock().unwrap_or_else(|p| p.into_inner()) = Some(bus);
        registry
    }

    /// Decides embedded or NATS from the flow's rendered url and the credentials file.
    pub fn target(&self, url: &str, credentials_path: Option<&str>) -> Result<(Target, Auth, ClientTls), BusError> {
        let url = url.trim();
        if url == EMBEDDED {
            return Ok((Target::Embedded, Auth::None, ClientTls::default()));
        }
        let (file_url, auth, tls) = match credentials_path {
            Some(path) => match NatsCredentials::load(&self.credentials, path) {
                Ok((creds, auth, tls)) => (creds.url, auth, tls),
                // A missing file is normal on a single node whose flows name the seed's path: it
                // matters only if the flow also names a server.
                Err(super::nats::credentials::CredentialsError::Read { path, source })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    if !url.is_empty() {
                        tracing::warn!(path = %path.display(), "NATS credentials file not found; connecting without credentials");
                    }
                    (None, Auth::None, ClientTls::default())
                }
                Err(e) => return Err(BusError::Unsupported(e.to_string())),
            },
            None => (None, Auth::None, ClientTls::default()),
        };
        let url = if url.is_empty() { file_url.unwrap_or_default() } else { url.to_string() };
        if url.is_empty() || url == EMBEDDED {
            return Ok((Target::Embedded, Auth::None, ClientTls::default()));
        }
        Ok((Target::Nats { url }, auth, tls))
    }

    /// The bus for `url` (rendered) and `credentials_path`, connecting on first use.
    pub async fn bus(&self, url: &str, credentials_path: Option<&str>) -> Result<SharedBus, BusError> {
        let (target, auth, tls) = self.target(url, credentials_path)?;
        match target {
            Target::Embedded => Ok(Arc::new(self.embedded()?)),
            Target::Nats { url } => {
                let key = (url.clone(), credentials_path.map(str::to_string));
                let mut connections = self.connections.lock().await;
                if let Some(bus) = connections.get(&key) {
                    return Ok(bus.clone());
                }
                let bus: SharedBus = Arc::new(NatsBus::connect_tls(&url, &auth, &tls, &self.trust).await?);
                tracing::info!(url, "connected to NATS");
                connections.insert(key, bus.clone());
                Ok(bus)
            }
        }
    }

    /// Every bus this process has opened so far: where a published batch can be looked for.
    pub async fn open_buses(&self) -> Vec<SharedBus> {
        let mut buses: Vec<SharedBus> = self.connections.lock().await.values().cloned().collect();
        if let Some(bus) = self.embedded.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            buses.push(Arc::new(bus));
        }
        buses
    }

    pub fn embedded(&self) -> Result<EmbeddedBus, BusError> {
        let mut slot = self.embedded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bus) = &*slot {
            return Ok(bus.clone());
        }
        let dir = self.state_dir.as_ref().ok_or_else(|| {
            BusError::Unsupported("this flow selects the embedded bus, but no state directory is configured".into())
        })?;
        let bus = EmbeddedBus::open(dir)?;
        tracing::info!(path = %dir.display(), "opened the embedded bus");
        *slot = Some(bus.clone());
        Ok(bus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_with(json: Option<&str>) -> (tempfile::TempDir, BusRegistry) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(json) = json {
            std::fs::create_dir_all(dir.path().join("etc/nats")).unwrap();
            std::fs::write(dir.path().join("etc/nats/credentials.json"), json).unwrap();
        }
        let root = CredentialsRoot::new(Some(dir.path().into()));
        (dir, BusRegistry::new(None, root))
    }

    const SEED_PATH: Option<&str> = Some("/etc/nats/credentials.json");

    #[test]
    fn empty_or_embedded_selects_the_embedded_bus() {
        let (_d, r) = registry_with(None);
        assert_eq!(r.target("", SEED_PATH).unwrap().0, Target::Embedded);
        assert_eq!(r.target("embedded", SEED_PATH).unwrap().0, Target::Embedded);
        assert_eq!(r.target("", None).unwrap().0, Target::Embedded);
    }

    #[test]
    fn the_flow_url_wins_over_the_files_and_the_file_fills_in() {
        let (_d, r) = registry_with(Some(r#"{"url": "nats://from-file:4222", "token": "t"}"#));
        assert_eq!(r.target("nats://flow:4222", SEED_PATH).unwrap().0, Target::Nats { url: "nats://flow:4222".into() });
        let (target, auth, _) = r.target("", SEED_PATH).unwrap();
        assert_eq!(target, Target::Nats { url: "nats://from-file:4222".into() });
        assert!(auth == Auth::Token("t".into()));
        assert_eq!(r.target("embedded", SEED_PATH).unwrap().0, Target::Embedded);
    }
}
