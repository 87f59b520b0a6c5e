//! The simulated org's identity: org and user ids, the connected app's secrets, the user's
//! password and the JWT key pair.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};

use crate::config::SimConfig;
use crate::ids;

/// 2048 bits, the size Salesforce docs use in their `openssl` example; large enough to be real,
/// small enough that generating one does not slow a test suite.
const KEY_BITS: usize = 2048;

/// Secrets are this long unless fixed by flags (the issue asks for 16+).
const SECRET_LEN: usize = 24;

/// What the org is, as persisted in `org.json`.
#[derive(Clone, Serialize, Deserialize)]
pub struct OrgIdentity {
    pub org_id: String,
    pub user_id: String,
    /// Another user of the same org (another team's integration): the creator of the jobs
    /// `POST /__sim/jobs` makes, which are not ours to adopt or abort.
    #[serde(default = "new_user_id")]
    pub other_user_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
    pub private_key_pem: String,
}

impl fmt::Debug for OrgIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrgIdentity")
            .field("org_id", &self.org_id)
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn new_user_id() -> String {
    ids::new_id("005")
}

impl OrgIdentity {
    /// A new org: fixed secrets from the config where given, random ones otherwise.
    pub fn create(config: &SimConfig) -> Result<Self, rsa::Error> {
        let private_key_pem = match &config.jwt_private_key_pem {
            Some(pem) => pem.clone(),
            None => shared_generated_key()?,
        };
        let org_id = ids::new_id("00D");
        Ok(OrgIdentity {
            username: config
                .username
                .clone()
                .unwrap_or_else(|| format!("sim-{}@bulkflow.example.com", ids::secret(8).to_lowercase())),
            org_id,
            user_id: new_user_id(),
            other_user_id: new_user_id(),
            client_id: config.client_id.clone().unwrap_or_else(|| format!("3MVG9sim{}", ids::secret(SECRET_LEN))),
            client_secret: config.client_secret.clone().unwrap_or_else(|| ids::secret(SECRET_LEN)),
            password: config.password.clone().unwrap_or_else(|| ids::secret(SECRET_LEN)),
            private_key_pem,
        })
    }

    /// Flags given on a restart win over what was stored: they are what the caller will log in with.
    pub fn override_from(&mut self, config: &SimConfig) {
        let pairs = [
            (&mut self.client_id, &config.client_id),
            (&mut self.client_secret, &config.client_secret),
            (&mut self.username, &config.username),
            (&mut self.password, &config.password),
            (&mut self.private_key_pem, &config.jwt_private_key_pem),
        ];
        for (field, value) in pairs {
            if let Some(value) = value {
                field.clone_from(value);
            }
        }
    }

    pub fn public_key(&self) -> Result<PublicKey, rsa::pkcs8::Error> {
        Ok(PrivateKey::from_pkcs8_pem(&self.private_key_pem)?.to_public_key())
    }
}

/// One generated key per process: simulators without `--state` or a given key share it, so a
/// test suite that starts dozens of them pays for key generation once.
fn shared_generated_key() -> Result<String, rsa::Error> {
    static KEY: OnceLock<String> = OnceLock::new();
    if let Some(pem) = KEY.get() {
        return Ok(pem.clone());
    }
    let key = PrivateKey::new(&mut getrandom::SysRng, KEY_BITS)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(rsa::Error::Pkcs8)?.to_string();
    Ok(KEY.get_or_init(|| pem).clone())
}

/// What a client needs to log in to this simulator, as `--credentials-out` writes it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
    pub login_url: String,
    /// `http://HOST:PORT` of the Pub/Sub API (plain HTTP/2).
    pub pubsub_url: Option<String>,
    /// Absolute path of the JWT private key, once written with [`Credentials::write_to`].
    pub private_key_path: Option<PathBuf>,
    /// PKCS#8 PEM of the JWT private key, for in-process callers; never written into the JSON.
    #[serde(skip)]
    pub private_key_pem: String,
    pub org_id: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("login_url", &self.login_url)
            .field("pubsub_url", &self.pubsub_url)
            .field("private_key_path", &self.private_key_path)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Writes the credentials JSON to `file` and the JWT key beside it (`<stem>-jwt-key.pem`), both
    /// mode 0600, and returns the credentials with `private_key_path` filled in.
    pub fn write_to(&self, file: &Path) -> std::io::Result<Credentials> {
        let file = std::path::absolute(file)?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&dir)?;
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("credentials");
        let key_path = dir.join(format!("{stem}-jwt-key.pem"));
        write_private(&key_path, self.private_key_pem.as_bytes())?;
        let written = Credentials { private_key_path: Some(key_path), ..self.clone() };
        let json = serde_json::to_vec_pretty(&written).map_err(std::io::Error::other)?;
        write_private(&file, &json)?;
        Ok(written)
    }
}

/// Writes a file only its owner can read, whatever the umask.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut f = options.open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut f = options.open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }
}
