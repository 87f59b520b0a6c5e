//! The NATS credentials file a flow's `credentials_path` names: the server url and at most one
//! way to authenticate. Secrets never reach logs or errors: `Debug` redacts them and errors name
//! the file, not its contents.
//!
//! ```json
//! {"url": "nats://nats.internal:4222", "user": "bulkflow", "password": "..."}
//! ```
//!
//! Auth keys (at most one kind): `nkey_seed`; `creds_file` (a `.creds` file with a JWT and seed,
//! relative to this file or mapped under the credentials root); `user` + `password`; `token`.
//!
//! TLS keys (paths found as `creds_file` is): `tls_ca_file`, the server's CA (PEM) when it is not
//! one the system (or `tls_ca_file` of the engine) trusts; `tls_cert_file` + `tls_key_file`, this
//! client's certificate for a server that verifies clients. A `tls://` url, or any of these,
//! makes TLS required: the connection fails rather than fall back to plain TCP.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::credentials::CredentialsRoot;

#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NatsCredentials {
    pub url: Option<String>,
    pub nkey_seed: Option<String>,
    pub creds_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

/// TLS for one NATS server, from its credentials file (paths resolved).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    pub ca_file: Option<PathBuf>,
    /// Certificate chain file and key file.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// Whether the credentials ask for TLS (a url's `tls://` asks too).
    pub fn is_asked(&self) -> bool {
        self.ca_file.is_some() || self.client.is_some()
    }
}

impl std::fmt::Debug for NatsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("NatsCredentials")
            .field("url", &self.url)
            .field("nkey_seed", &redacted(&self.nkey_seed))
            .field("creds_file", &self.creds_file)
            .field("user", &self.user)
            .field("password", &redacted(&self.password))
            .field("token", &redacted(&self.token))
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .finish()
    }
}

/// How to authenticate, after checking that the file names at most one way.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    NkeySeed(String),
    CredsFile(PathBuf),
    UserPassword { user: String, password: String },
    Token(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::NkeySeed(_) => f.write_str("NkeySeed(<redacted>)"),
            Auth::CredsFile(p) => f.debug_tuple("CredsFile").field(p).finish(),
            Auth::UserPassword { user, .. } => write!(f, "UserPassword {{ user: {user:?}, password: <redacted> }}"),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read NATS credentials {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// serde_json's message names the key and position, never the values around it.
    #[error("NATS credentials {path} are not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl NatsCredentials {
    /// Reads the file `path` names (through the credentials root).
    pub fn load(root: &CredentialsRoot, path: &str) -> Result<(Self, Auth, ClientTls), CredentialsError> {
        let file = root.resolve(Path::new(path));
        crate::credentials::permissions::warn_if_loose(&file);
        let text =
            std::fs::read_to_string(&file).map_err(|source| CredentialsError::Read { path: file.clone(), source })?;
        let creds: Self = serde_json::from_str(&text)
            .map_err(|e| CredentialsError::Invalid { path: file.clone(), message: redact_serde(&e) })?;
        let auth = creds.auth(root, &file)?;
        let tls = creds.tls(root, &file)?;
        Ok((creds, auth, tls))
    }

    fn tls(&self, root: &CredentialsRoot, file: &Path) -> Result<ClientTls, CredentialsError> {
        let client = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some((root.resolve_within(file, cert), root.resolve_within(file, key))),
            (None, None) => None,
            _ => {
                return Err(CredentialsError::Invalid {
                    path: file.to_path_buf(),
                    message: "`tls_cert_file` and `tls_key_file` go together".into(),
                });
            }
        };
        Ok(ClientTls { ca_file: self.tls_ca_file.as_ref().map(|ca| root.resolve_within(file, ca)), client })
    }

    fn auth(&self, root: &CredentialsRoot, file: &Path) -> Result<Auth, CredentialsError> {
        let invalid = |message: &str| CredentialsError::Invalid { path: file.to_path_buf(), message: message.into() };
        let mut kinds = Vec::new();
        if let Some(seed) = &self.nkey_seed {
            kinds.push(Auth::NkeySeed(seed.clone()));
        }
        if let Some(creds) = &self.creds_file {
            kinds.push(Auth::CredsFile(root.resolve_within(file, creds)));
        }
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => {
                kinds.push(Auth::UserPassword { user: user.clone(), password: password.clone() });
            }
            (None, None) => {}
            _ => return Err(invalid("`user` and `password` go together")),
        }
        if let Some(token) = &self.token {
            kinds.push(Auth::Token(token.clone()));
        }
        match kinds.len() {
            0 => Ok(Auth::None),
            1 => Ok(kinds.remove(0)),
            _ => Err(invalid("give at most one of `nkey_seed`, `creds_file`, `user`/`password`, `token`")),
        }
    }
}

/// serde_json errors can quote the input near the error ("invalid type: string \"s3cr3t\""); keep
/// only the category and the position.
fn redact_serde(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let kind = if text.starts_with("unknown field") {
        text.split(", expected").next().unwrap_or("unknown field").to_string()
    } else {
        match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not valid JSON".to_string(),
            serde_json::error::Category::Data => "a value has the wrong type".to_string(),
            serde_json::error::Category::Io => "read error".to_string(),
        }
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Result<(NatsCredentials, Auth, ClientTls), CredentialsError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/nats")).unwrap();
        std::fs::write(dir.path().join("etc/nats/credentials.json"), json).unwrap();
        NatsCredentials::load(&CredentialsRoot::new(Some(dir.path().into())), "/etc/nats/credentials.json")
    }

    #[test]
    fn one_auth_kind_at_most_and_secrets_stay_out_of_messages() {
        let (c, auth, _) = load(r#"{"url": "nats://x:4222", "user": "u", "password": "s3cr3t"}"#).unwrap();
        assert!(matches!(auth, Auth::UserPassword { .. }));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let err = load(r#"{"token": "s3cr3t", "nkey_seed": "SUAxx"}"#).unwrap_err().to_string();
        assert!(err.contains("at most one") && !err.contains("s3cr3t"), "{err}");
        let err = load(r#"{"token": 5}"#).unwrap_err().to_string();
        assert!(err.contains("wrong type"), "{err}");
        let err = load(r#"{"password": "s3cr3t"}"#).unwrap_err().to_string();
        assert!(err.contains("go together") && !err.contains("s3cr3t"), "{err}");
        let (_, auth, _) = load(r#"{"url": "nats://x:4222"}"#).unwrap();
        assert!(auth == Auth::None);
    }

    #[test]
    fn a_creds_file_is_found_beside_the_credentials() {
        let (_, auth, _) = load(r#"{"creds_file": "bulkflow.creds"}"#).unwrap();
        let Auth::CredsFile(path) = auth else { panic!("expected a creds file") };
        assert!(path.ends_with("etc/nats/bulkflow.creds"), "{}", path.display());
        let (_, _, tls) =
            load(r#"{"tls_ca_file": "ca.pem", "tls_cert_file": "/etc/pki/c.pem", "tls_key_file": "k.pem"}"#).unwrap();
        assert!(tls.ca_file.unwrap().ends_with("etc/nats/ca.pem"));
        let (cert, key) = tls.client.unwrap();
        assert!(cert.ends_with("etc/pki/c.pem") && key.ends_with("etc/nats/k.pem"), "{cert:?} {key:?}");
        let err = load(r#"{"tls_cert_file": "c.pem"}"#).unwrap_err().to_string();
        assert!(err.contains("`tls_cert_file` and `tls_key_file` go together"), "{err}");
    }
}
