//! Salesforce credentials files, as the seed's table describes them (`client_id`,
//! `client_secret`, `username`, `password`, `login_url`) plus `private_key_path`, `api_version`
//! and `pubsub_url`. Files come from other tools, so unknown keys are ignored (named at debug level,
//! values never).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::secret::Secret;
use crate::credentials::CredentialsRoot;

#[derive(Debug, Clone)]
pub struct SalesforceCredentials {
    /// Where the file was read from, for messages.
    pub file: PathBuf,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub login_url: String,
    pub private_key_path: Option<PathBuf>,
    pub api_version: Option<String>,
    pub pubsub_url: Option<String>,
}

/// The OAuth flow a credentials file selects, by what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    JwtBearer,
    UsernamePassword,
    ClientCredentials,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read Salesforce credentials {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("Salesforce credentials {path} are not a JSON object: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("Salesforce credentials {path}: key `{key}` {problem}")]
    Key { path: PathBuf, key: &'static str, problem: &'static str },
}

const KNOWN: &[&str] = &[
    "client_id",
    "client_secret",
    "username",
    "password",
    "login_url",
    "private_key_path",
    "api_version",
    "pubsub_url",
];

impl SalesforceCredentials {
    /// Read the file a flow's `credentials_path` names, mapped under the credentials root.
    pub fn load(credentials_path: &Path, root: &CredentialsRoot) -> Result<Self, CredentialsError> {
        let file = root.resolve(credentials_path);
        let text =
            std::fs::read_to_string(&file).map_err(|source| CredentialsError::Read { path: file.clone(), source })?;
        crate::credentials::permissions::warn_if_loose(&file);
        let map: Map<String, Value> = serde_json::from_str(&text)
            .map_err(|e| CredentialsError::Json { path: file.clone(), reason: e.to_string() })?;
        for key in map.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
            tracing::debug!(file = %file.display(), key, "ignoring an unknown key in Salesforce credentials");
        }
        let path = file.clone();
        let string = |key: &'static str| -> Result<Option<String>, CredentialsError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(CredentialsError::Key { path: path.clone(), key, problem: "must be a string" }),
            }
        };
        let client_id = string("client_id")?.ok_or(CredentialsError::Key {
            path: file.clone(),
            key: "client_id",
            problem: "is required (the connected app's consumer key)",
        })?;
        let login_url = string("login_url")?
            .ok_or(CredentialsError::Key {
                path: file.clone(),
                key: "login_url",
                problem: "is required (e.g. https://login.salesforce.com or your My Domain URL)",
            })?
            .trim_end_matches('/')
            .to_string();
        let private_key_path = string("private_key_path")?.map(|p| root.resolve_within(&file, Path::new(&p)));
        let creds = Self {
            client_id,
            client_secret: string("client_secret")?.map(Secret::new),
            username: string("username")?,
            password: string("password")?.map(Secret::new),
            login_url,
            private_key_path,
            api_version: string("api_version")?,
            pubsub_url: string("pubsub_url")?,
            file,
        };
        creds.check()?;
        Ok(creds)
    }

    /// `private_key_path` → JWT bearer; else username + password → username-password; else
    /// client credentials.
    pub fn flow(&self) -> Flow {
        if self.private_key_path.is_some() {
            Flow::JwtBearer
        } else if self.username.is_some() && self.password.is_some() {
            Flow::UsernamePassword
        } else {
            Flow::ClientCredentials
        }
    }

    fn check(&self) -> Result<(), CredentialsError> {
        let missing =
            |key| CredentialsError::Key { path: self.file.clone(), key, problem: "is required for this OAuth flow" };
        match self.flow() {
            Flow::JwtBearer if self.username.is_none() => Err(missing("username")),
            Flow::UsernamePassword | Flow::ClientCredentials if self.client_secret.is_none() => {
                Err(missing("client_secret"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("etc/sfdc/credentials.json");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn the_flow_follows_from_what_is_present() {
        let dir = tempfile::tempdir().unwrap();
        let root = CredentialsRoot::new(Some(dir.path().to_path_buf()));
        let load = |body: &str| {
            write(dir.path(), body);
            SalesforceCredentials::load(Path::new("/etc/sfdc/credentials.json"), &root)
        };
        let c = load(r#"{"client_id":"c","client_secret":"s","login_url":"http://x/","other_tool_key":1}"#).unwrap();
        assert_eq!(c.flow(), Flow::ClientCredentials);
        assert_eq!(c.login_url, "http://x");
        let c = load(r#"{"client_id":"c","client_secret":"s","username":"u","password":"p","login_url":"http://x"}"#)
            .unwrap();
        assert_eq!(c.flow(), Flow::UsernamePassword);
        let c =
            load(r#"{"client_id":"c","username":"u","private_key_path":"key.pem","login_url":"http://x"}"#).unwrap();
        assert_eq!(c.flow(), Flow::JwtBearer);
        assert_eq!(c.private_key_path.unwrap(), dir.path().join("etc/sfdc/key.pem"));
    }

    #[test]
    fn problems_name_the_file_and_key_but_never_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let root = CredentialsRoot::new(Some(dir.path().to_path_buf()));
        write(dir.path(), r#"{"client_id":"c","password":"topsecret","username":"u","login_url":"http://x"}"#);
        let err = SalesforceCredentials::load(Path::new("/etc/sfdc/credentials.json"), &root).unwrap_err().to_string();
        assert!(err.contains("credentials.json: key `client_secret` is required"), "{err}");
        assert!(!err.contains("topsecret"));
        write(dir.path(), r#"{"client_id": 5}"#);
        let err = SalesforceCredentials::load(Path::new("/etc/sfdc/credentials.json"), &root).unwrap_err().to_string();
        assert!(err.contains("key `client_id` must be a string"), "{err}");
        let creds = format!("{:?}", {
            write(dir.path(), r#"{"client_id":"c","client_secret":"topsecret","login_url":"http://x"}"#);
            SalesforceCredentials::load(Path::new("/etc/sfdc/credentials.json"), &root).unwrap()
        });
        assert!(!creds.contains("topsecret"), "{creds}");
    }
}
