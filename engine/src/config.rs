//! The engine's own configuration: an optional `bulkflow.yaml`, every key also a flag and an
//! environment variable. Precedence is flag > environment > file > default; the defaults live in
//! [`EngineConfig::default`] and nowhere else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::flow::de::from_node;
use crate::flow::duration::HumanDuration;
use crate::flow::size::HumanBytes;
use crate::flow::{Mark, yaml};
use crate::salesforce::{ClientSettings, Limits};
use crate::tls::Trust;

/// What to do with completion events of Bulk API jobs that bulkflow did not create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForeignJobs {
    /// Log and skip them: another team's exports must not land in this warehouse.
    #[default]
    Skip,
    Include,
}

impl std::str::FromStr for ForeignJobs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skip" => Ok(Self::Skip),
            "include" => Ok(Self::Include),
            _ => Err(format!("`{s}`: expected `skip` or `include`")),
        }
    }
}

/// The file's shape (`bulkflow.yaml`) and, field for field, the shape of the overrides from flags
/// and environment variables: every field optional, so "not given" is distinguishable from a value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    pub state_dir: Option<PathBuf>,
    pub workflows_dir: Option<PathBuf>,
    pub resources_dir: Option<PathBuf>,
    pub credentials_root: Option<PathBuf>,
    pub api_version: Option<String>,
    pub retention: Option<HumanDuration>,
    pub control_listen: Option<SocketAddr>,
    /// A file holding the control API's bearer token (never the token itself: config files get
    /// shared and logged).
    pub control_token_file: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
    /// NATS for the engine's own leases and KV; separate from the flows' bus URLs.
    pub nats_url: Option<String>,
    pub foreign_jobs: Option<ForeignJobs>,
    pub job_poll_after: Option<HumanDuration>,
    pub salesforce_request_timeout: Option<HumanDuration>,
    pub salesforce_page_timeout: Option<HumanDuration>,
    pub salesforce_max_page_size: Option<HumanBytes>,
    pub salesforce_max_answer_size: Option<HumanBytes>,
    pub salesforce_max_error_body: Option<HumanBytes>,
    pub salesforce_max_job_list_pages: Option<u32>,
    pub salesforce_stream_silence_timeout: Option<HumanDuration>,
    /// CA certificates (PEM) trusted besides the system's, by every outbound TLS connection.
    pub tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub state_dir: PathBuf,
    pub workflows_dir: PathBuf,
    pub resources_dir: PathBuf,
    pub credentials_root: Option<PathBuf>,
    pub api_version: String,
    /// How long finished runs are kept before they are compacted.
    pub retention: Duration,
    /// The control API's TCP address, besides the Unix socket in the state directory that is
    /// always served; `None`: the socket only.
    pub control_listen: Option<SocketAddr>,
    pub control_token_file: Option<PathBuf>,
    /// `/metrics`, `/healthz` and `/readyz`; `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    pub nats_url: Option<String>,
    pub foreign_jobs: ForeignJobs,
    /// A run quiet this long (no completion event, no progress) has its job's state polled, so a
    /// completion event missed while the process was down, or never sent, does not strand it.
    pub job_poll_after: Duration,
    /// Bounds on what is read from Salesforce (deadlines and sizes).
    pub salesforce_limits: Limits,
    /// What outbound TLS trusts: the system's roots and `tls_ca_file`'s.
    pub trust: Trust,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("bulkflow-state"),
            workflows_dir: PathBuf::from("workflows"),
            resources_dir: PathBuf::from("resources"),
            credentials_root: None,
            api_version: "63.0".to_string(),
            retention: Duration::from_secs(30 * 86_400),
            control_listen: None,
            control_token_file: None,
            metrics_listen: None,
            nats_url: None,
            foreign_jobs: ForeignJobs::Skip,
            job_poll_after: Duration::from_secs(120),
            salesforce_limits: Limits::default(),
            trust: Trust::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{mark}: key `{key}`: {message}")]
    Invalid { path: PathBuf, mark: Mark, key: String, message: String },
    #[error("api_version `{0}` is not a Salesforce API version like `63.0`")]
    ApiVersion(String),
    /// Not a `source`: its message is already in this one.
    #[error("tls_ca_file: {0}")]
    Tls(crate::tls::TlsError),
}

impl ConfigLayer {
    /// Read a config file, reporting problems at their line and column.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let node = yaml::parse(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            mark: e.mark,
            key: e.key.unwrap_or_default(),
            message: e.message,
        })?;
        if matches!(&node.value, yaml::NodeValue::Scalar(s) if s.is_null()) {
            return Ok(Self::default());
        }
        from_node(&node, "").map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            mark: e.mark.unwrap_or(node.mark),
            key: e.path.unwrap_or_default(),
            message: e.message,
        })
    }
}

impl EngineConfig {
    /// The Salesforce clients' settings: the configured bounds, the default retries.
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings { limits: self.salesforce_limits, trust: self.trust.clone(), ..ClientSettings::default() }
    }

    /// Layers in order of precedence, highest first (flags and environment, then the file).
    pub fn resolve(layers: &[&ConfigLayer]) -> Result<Self, ConfigError> {
        let d = Self::default();
        macro_rules! pick {
            ($field:ident) => {
                layers.iter().find_map(|l| l.$field.clone())
            };
        }
        let api_version = pick!(api_version).unwrap_or(d.api_version);
        let valid = api_version.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
        });
        if !valid {
            return Err(ConfigError::ApiVersion(api_version));
        }
        Ok(Self {
            state_dir: pick!(state_dir).unwrap_or(d.state_dir),
            workflows_dir: pick!(workflows_dir).unwrap_or(d.workflows_dir),
            resources_dir: pick!(resources_dir).unwrap_or(d.resources_dir),
            credentials_root: pick!(credentials_root).or(d.credentials_root),
            api_version,
            retention: pick!(retention).map(|r| r.0).unwrap_or(d.retention),
            control_listen: pick!(control_listen).or(d.control_listen),
            control_token_file: pick!(control_token_file).or(d.control_token_file),
            metrics_listen: pick!(metrics_listen).or(d.metrics_listen),
            nats_url: pick!(nats_url).filter(|u| !u.is_empty()).or(d.nats_url),
            foreign_jobs: pick!(foreign_jobs).unwrap_or(d.foreign_jobs),
            job_poll_after: pick!(job_poll_after).map(|r| r.0).unwrap_or(d.job_poll_after),
            salesforce_limits: {
                let l = d.salesforce_limits;
                Limits {
                    request_timeout: pick!(salesforce_request_timeout).map_or(l.request_timeout, |t| t.0),
                    page_timeout: pick!(salesforce_page_timeout).map_or(l.page_timeout, |t| t.0),
                    max_page_bytes: pick!(salesforce_max_page_size).map_or(l.max_page_bytes, |b| b.0),
                    max_answer_bytes: pick!(salesforce_max_answer_size).map_or(l.max_answer_bytes, |b| b.0),
                    max_error_body: pick!(salesforce_max_error_body).map_or(l.max_error_body, |b| b.0),
                    max_job_list_pages: pick!(salesforce_max_job_list_pages).unwrap_or(l.max_job_list_pages),
                    stream_silence_timeout: pick!(salesforce_stream_silence_timeout)
                        .map_or(l.stream_silence_timeout, |t| t.0),
                }
            },
            trust: Trust::load(pick!(tls_ca_file).as_deref()).map_err(ConfigError::Tls)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bulkflow.yaml");
        std::fs::write(&file, "state_dir: /from/file\napi_version: \"62.0\"\nretention: 7d\n").unwrap();
        let from_file = ConfigLayer::from_file(&file).unwrap();
        let flags = ConfigLayer { state_dir: Some("/from/flag".into()), ..Default::default() };
        let c = EngineConfig::resolve(&[&flags, &from_file]).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.api_version, "62.0");
        assert_eq!(c.retention, Duration::from_secs(7 * 86_400));
        assert_eq!(c.workflows_dir, PathBuf::from("workflows"));
        assert_eq!(EngineConfig::resolve(&[]).unwrap(), EngineConfig::default());
    }

    #[test]
    fn file_errors_name_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bulkflow.yaml");
        std::fs::write(&file, "state_dir: /x\nretension: 7d\n").unwrap();
        let err = ConfigLayer::from_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("bulkflow.yaml:2:1: key `retension`: unknown key `retension` (did you mean `retention`?)"),
            "{err}"
        );
        std::fs::write(&file, "retention: forever\n").unwrap();
        let err = ConfigLayer::from_file(&file).unwrap_err().to_string();
        assert!(err.contains(":1:12: key `retention`:"), "{err}");
    }

    #[test]
    fn salesforce_limits_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bulkflow.yaml");
        std::fs::write(&file, "salesforce_page_timeout: 5m\nsalesforce_max_page_size: 2GiB\n").unwrap();
        let c = EngineConfig::resolve(&[&ConfigLayer::from_file(&file).unwrap()]).unwrap();
        assert_eq!(c.salesforce_limits.page_timeout, Duration::from_secs(300));
        assert_eq!(c.salesforce_limits.max_page_bytes, 2 << 30);
        assert_eq!(c.salesforce_limits.max_error_body, Limits::default().max_error_body);
        std::fs::write(&file, "salesforce_max_error_body: huge\n").unwrap();
        let err = ConfigLayer::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("key `salesforce_max_error_body`: `huge` is not a size"), "{err}");
    }

    #[test]
    fn api_version_is_checked() {
        let bad = ConfigLayer { api_version: Some("v63".into()), ..Default::default() };
        assert!(matches!(EngineConfig::resolve(&[&bad]), Err(ConfigError::ApiVersion(_))));
    }
}
