//! From a task's rendered `path` to an object store and the prefix inside it: a local path,
//! `file://`, `s3://bucket/...`, `gs://bucket/...` or `az://container/...`, each through the
//! `object_store` crate with the credentials file the seed's table names for that cloud and the
//! endpoint overrides S3-compatible servers and emulators need.
//!
//! Clients are built once per bucket and reused: they hold connection pools and cached tokens.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use serde_json::{Value, json};
use url::Url;

use crate::credentials::files::{self as credentials, AwsCredentials, AzureCredentials, CredentialsError};
use crate::env::EnvLookup;
use crate::flow::template::{Context, Template, TemplateError};
use crate::tls::Trust;

/// The variable GCS emulators (fake-gcs-server) and Google's own tools read for their address.
pub const GCS_EMULATOR_ENV: &str = "STORAGE_EMULATOR_HOST";

/// Where one file goes: a store and the prefix under which the task writes.
#[derive(Debug, Clone)]
pub struct Target {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjectPath,
    /// For local disk, the prefix as a path: such files are written by [`super::local`].
    pub local: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("`path` rendered empty; set it (or the environment variable it reads) to a local path or a URL")]
    Empty,
    #[error("path `{location}`: {reason}")]
    BadLocation { location: String, reason: String },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("client_options.{key} is not an option of the {scheme} client")]
    UnknownOption { key: String, scheme: &'static str },
    #[error("client_options.{key}: {source}")]
    OptionTemplate {
        key: String,
        #[source]
        source: TemplateError,
    },
    #[error("cannot set up the {scheme} client for `{location}`: {source}")]
    Build {
        scheme: &'static str,
        location: String,
        #[source]
        source: object_store::Error,
    },
}

/// Builds and caches the stores one task writes to.
pub struct StoreFactory {
    /// The task's `credentials_path`, already mapped under the credentials root.
    credentials: Option<PathBuf>,
    client_options: BTreeMap<String, Template>,
    env: EnvLookup,
    trust: Trust,
    cache: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl StoreFactory {
    pub fn new(credentials: Option<PathBuf>, client_options: BTreeMap<String, Template>, env: EnvLookup) -> Self {
        Self { credentials, client_options, env, trust: Trust::default(), cache: Mutex::default() }
    }

    /// The roots HTTPS to the stores trusts besides the system's (`tls_ca_file`).
    pub fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// The store and prefix for a rendered `path`.
    pub fn target(&self, location: &str) -> Result<Target, StoreError> {
        let location = location.trim();
        if location.is_empty() {
            return Err(StoreError::Empty);
        }
        let bad = |reason: &str| StoreError::BadLocation { location: location.to_string(), reason: reason.to_string() };
        if !location.contains("://") {
            return self.local(location, Path::new(location));
        }
        let url = Url::parse(location).map_err(|e| bad(&e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in the URL; use `credentials_path`"));
        }
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| bad("not a local file URL"))?;
            return self.local(location, &path);
        }
        let bucket = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("the URL names no bucket"))?;
        let prefix = ObjectPath::from_url_path(url.path()).map_err(|e| bad(&e.to_string()))?;
        let scheme: &'static str = match url.scheme() {
            "s3" | "s3a" => "s3",
            "gs" => "gs",
            "az" | "azure" => "az",
            other => {
                return Err(bad(&format!(
                    "scheme `{other}` is not supported; use a local path, file://, s3://, gs:// or az://"
                )));
            }
        };
        let key = format!("{scheme}://{bucket}");
        let store = self.cached(&key, || match scheme {
            "s3" => self.s3(location, bucket),
            "gs" => self.gcs(location, bucket),
            _ => self.azure(location, bucket),
        })?;
        Ok(Target { store, prefix, local: None })
    }

    fn local(&self, location: &str, path: &Path) -> Result<Target, StoreError> {
        let bad = |reason: String| StoreError::BadLocation { location: location.to_string(), reason };
        let absolute = std::path::absolute(path).map_err(|e| bad(e.to_string()))?;
        let prefix = ObjectPath::from_absolute_path(&absolute).map_err(|e| bad(e.to_string()))?;
        // Files are written by `local::put`; the store serves reads and listings.
        let store = self.cached("file://", || Ok(Arc::new(LocalFileSystem::new()) as Arc<dyn ObjectStore>))?;
        Ok(Target { store, prefix, local: Some(absolute) })
    }

    fn cached(
        &self,
        key: &str,
        build: impl FnOnce() -> Result<Arc<dyn ObjectStore>, StoreError>,
    ) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = cache.get(key) {
            return Ok(store.clone());
        }
        let store = build()?;
        cache.insert(key.to_string(), store.clone());
        Ok(store)
    }

    /// `client_options` as the backend's typed config keys, rendered over the environment (they
    /// configure a client shared by every event, so they cannot read one). An unknown key is an
    /// error, not ignored; a value that renders empty is left unset.
    fn options<K: FromStr>(&self, scheme: &'static str) -> Result<Vec<(K, String)>, StoreError> {
        let env = |name: &str| (self.env)(name);
        let ctx = Context { event: None, env: &env };
        let mut out = Vec::with_capacity(self.client_options.len());
        for (k, template) in &self.client_options {
            let key = K::from_str(k).map_err(|_| StoreError::UnknownOption { key: k.clone(), scheme })?;
            let value =
                template.render_string(&ctx).map_err(|source| StoreError::OptionTemplate { key: k.clone(), source })?;
            if !value.is_empty() {
                if crate::tls::turns_verification_off(k, &value) {
                    tracing::warn!(
                        key = k,
                        scheme,
                        "client_options turn TLS certificate verification off for this object store: any server can pose as it"
                    );
                }
                out.push((key, value));
            }
        }
        Ok(out)
    }

    fn credentials_text(&self) -> Result<Option<(PathBuf, String)>, StoreError> {
        let Some(path) = &self.credentials else { return Ok(None) };
        Ok(Some((path.clone(), credentials::read(path)?)))
    }

    fn s3(&self, location: &str, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut b = AmazonS3Builder::new().with_bucket_name(bucket).with_client_options(self.trust.object_store());
        if let Some((path, text)) = self.credentials_text()? {
            let c: AwsCredentials = credentials::decode(&path, &text, "an AWS access key JSON")?;
            b = b.with_access_key_id(c.access_key_id).with_secret_access_key(c.secret_access_key);
            if let Some(token) = c.session_token {
                b = b.with_token(token);
            }
            if let Some(region) = c.region {
                b = b.with_region(region);
            }
        }
        for (key, value) in self.options::<AmazonS3ConfigKey>("s3")? {
            b = b.with_config(key, value);
        }
        // An S3-compatible server on plain HTTP (MinIO, moto, a local gateway) is named by its
        // endpoint; allowing HTTP only then keeps real S3 on TLS.
        if b.get_config_value(&AmazonS3ConfigKey::Endpoint).is_some_and(|e| e.starts_with("http://")) {
            b = b.with_allow_http(true);
        }
        let store =
            b.build().map_err(|source| StoreError::Build { scheme: "s3", location: location.into(), source })?;
        Ok(Arc::new(store))
    }

    fn gcs(&self, location: &str, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut b =
            GoogleCloudStorageBuilder::new().with_bucket_name(bucket).with_client_options(self.trust.object_store());
        let emulator = (self.env)(GCS_EMULATOR_ENV).filter(|h| !h.trim().is_empty());
        let key = self.credentials_text()?;
        match (key, emulator) {
            (key, Some(host)) => {
                // The client takes an emulator's address from the service account key itself, and
                // an emulator wants no OAuth token, so both are set on the key it is given.
                let mut account = match key {
                    Some((path, text)) => credentials::decode::<Value>(&path, &text, "a GCP service account JSON")?,
                    None => json!({"private_key": "unused", "private_key_id": "unused", "client_email": "emulator"}),
                };
                let base = if host.contains("://") { host } else { format!("http://{host}") };
                if base.starts_with("http://") {
                    b = b.with_client_options(self.trust.object_store().with_allow_http(true));
                }
                account["gcs_base_url"] = Value::String(base.trim_end_matches('/').to_string());
                account["disable_oauth"] = Value::Bool(true);
                b = b.with_service_account_key(account.to_string());
            }
            (Some((_, text)), None) => b = b.with_service_account_key(text),
            (None, None) => {}
        }
        for (key, value) in self.options::<GoogleConfigKey>("gs")? {
            b = b.with_config(key, value);
        }
        let store =
            b.build().map_err(|source| StoreError::Build { scheme: "gs", location: location.into(), source })?;
        Ok(Arc::new(store))
    }

    fn azure(&self, location: &str, container: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut b =
            MicrosoftAzureBuilder::new().with_container_name(container).with_client_options(self.trust.object_store());
        if let Some((path, text)) = self.credentials_text()? {
            let c: AzureCredentials = credentials::decode(&path, &text, "an Azure storage account JSON")?;
            b = b.with_account(c.account_name).with_access_key(c.account_key);
        }
        for (key, value) in self.options::<AzureConfigKey>("az")? {
            b = b.with_config(key, value);
        }
        let store =
            b.build().map_err(|source| StoreError::Build { scheme: "az", location: location.into(), source })?;
        Ok(Arc::new(store))
    }
}
