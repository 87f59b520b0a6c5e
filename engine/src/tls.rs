//! What outbound TLS trusts: the system's roots, plus the CA certificates of an optional file
//! (`tls_ca_file`: a proxy that re-signs traffic, a private PostgreSQL or NATS). Every client
//! takes its trust from here — Salesforce's REST and Pub/Sub calls, Google's token and BigQuery
//! calls, NATS and PostgreSQL — so a CA file given once applies everywhere.
//!
//! There is no switch that turns verification off: a server whose certificate does not chain to
//! a trusted root, or does not name the host dialled, is refused. A self-signed server is trusted
//! by naming its certificate (or its CA) in a CA file, not by trusting everything.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The io error is part of the message, not a `source`: a chain printer would repeat it.
    #[error("cannot read {what} {path}: {error}")]
    Read { what: &'static str, path: PathBuf, error: std::io::Error },
    #[error("{what} {path}: {reason}")]
    Invalid { what: &'static str, path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The roots outbound TLS trusts. Cheap to clone; equal when loaded from the same file.
#[derive(Clone, Default)]
pub struct Trust {
    ca_file: Option<PathBuf>,
    /// The CA file as read (PEM), for clients that take PEM (tonic).
    pem: Arc<Vec<u8>>,
    certs: Arc<Vec<CertificateDer<'static>>>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("ca_file", &self.ca_file).field("extra_roots", &self.certs.len()).finish()
    }
}

impl PartialEq for Trust {
    fn eq(&self, other: &Self) -> bool {
        self.ca_file == other.ca_file
    }
}

impl Trust {
    /// The system's roots, plus those of `ca_file` when given. A file that cannot be read, or
    /// holds no certificate, is an error naming it: a CA file that silently adds nothing would
    /// surface much later as an unexplained certificate failure.
    pub fn load(ca_file: Option<&Path>) -> Result<Self, TlsError> {
        let Some(path) = ca_file else { return Ok(Self::default()) };
        let (pem, certs) = read_certs("CA file", path)?;
        Ok(Self { ca_file: Some(path.to_path_buf()), pem: Arc::new(pem), certs: Arc::new(certs) })
    }

    /// A reqwest client trusting these roots besides the system's.
    pub fn reqwest(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if self.certs.is_empty() {
            return builder;
        }
        let certs = self.certs.iter().filter_map(|c| reqwest::Certificate::from_der(c).ok()).collect::<Vec<_>>();
        builder.tls_certs_merge(certs)
    }

    /// object_store's client options trusting these roots besides the system's; a flow's
    /// `client_options` keys go on top of them.
    pub fn object_store(&self) -> object_store::ClientOptions {
        self.certs
            .iter()
            .filter_map(|c| object_store::Certificate::from_der(c).ok())
            .fold(object_store::ClientOptions::new(), |options, cert| options.with_root_certificate(cert))
    }

    /// tonic's TLS settings: the system's roots and these.
    pub fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        install_default_provider();
        let config = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if self.pem.is_empty() {
            config
        } else {
            config.ca_certificate(tonic::transport::Certificate::from_pem(self.pem.as_slice()))
        }
    }

    /// A rustls client configuration trusting the system's roots, these, and `extra_ca` (a
    /// connection's own CA file: NATS's `tls_ca_file`, PostgreSQL's `sslrootcert`), presenting
    /// `client` (certificate chain file, key file) when the server asks for one.
    pub fn rustls(
        &self,
        extra_ca: Option<&Path>,
        client: Option<(&Path, &Path)>,
    ) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        // A system root that does not parse is skipped, as every TLS client does; the ones
        // bulkflow was given explicitly must all parse.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        add_roots(&mut roots, self.certs.iter().cloned(), self.ca_file.as_deref().unwrap_or(Path::new("")))?;
        if let Some(path) = extra_ca {
            add_roots(&mut roots, read_certs("CA file", path)?.1, path)?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_root_certificates(roots);
        match client {
            None => Ok(builder.with_no_client_auth()),
            Some((cert_file, key_file)) => {
                let chain = read_certs("client certificate", cert_file)?.1;
                let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::Invalid {
                    what: "client key",
                    path: key_file.to_path_buf(),
                    // The key's bytes never reach a message; the parser's error does not hold them.
                    reason: format!("no PEM private key: {e}"),
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| TlsError::Invalid {
                    what: "client certificate",
                    path: cert_file.to_path_buf(),
                    reason: format!("does not go with its key: {e}"),
                })
            }
        }
    }
}

/// Whether `url` (`scheme://host[:port]/...`) names this machine.
pub fn is_loopback(url: &str) -> bool {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(is_loopback_host)).unwrap_or(false)
}

/// Whether `host` (a name, an address, `[::1]` as URLs write it) is this machine.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Says, at every start, that `url` is plain HTTP to another machine: bulkflow has no switch that
/// turns TLS verification off, but an `http://` URL leaves TLS out altogether, and that must not
/// go unnoticed (a simulator on this machine is the one quiet case).
pub fn warn_if_plain(what: &str, url: &str) {
    if url.trim_start().starts_with("http://") && !is_loopback(url.trim()) {
        tracing::warn!(
            what,
            url,
            "plain HTTP to another machine: no TLS, so tokens and data cross the network in the clear"
        );
    }
}

/// object_store's `allow_invalid_certificates` (under any backend's prefix) set true: the one
/// option a flow can write that turns verification off. It is allowed, and said at every start.
pub fn turns_verification_off(key: &str, value: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let name = ["aws_", "google_", "azure_"].iter().fold(key.as_str(), |k, p| k.strip_prefix(p).unwrap_or(k));
    name == "allow_invalid_certificates"
        && matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
}

/// tonic builds its rustls configurations with the process's default crypto provider, which
/// rustls cannot pick by itself when, as here, the dependency tree enables both aws-lc-rs and
/// ring (it panics instead). Installing aws-lc-rs, the provider bulkflow's own configurations use,
/// settles it; a provider installed earlier by the process stays.
pub fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Adds the certificates of the CA file `path` to `roots`: each must be usable as a root.
fn add_roots(
    roots: &mut rustls::RootCertStore,
    certs: impl IntoIterator<Item = CertificateDer<'static>>,
    path: &Path,
) -> Result<(), TlsError> {
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::Invalid {
            what: "CA file",
            path: path.to_path_buf(),
            reason: format!("a certificate is not a usable root: {e}"),
        })?;
    }
    Ok(())
}

/// The certificates of a PEM file (the file's bytes too): at least one.
fn read_certs(what: &'static str, path: &Path) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), TlsError> {
    let pem = std::fs::read(path).map_err(|error| TlsError::Read { what, path: path.to_path_buf(), error })?;
    let invalid = |reason: String| TlsError::Invalid { what, path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into()));
    }
    Ok((pem, certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_certificate_and_its_errors_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = Trust::load(Some(&missing)).unwrap_err().to_string();
        assert!(err.contains("cannot read CA file") && err.contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = Trust::load(Some(&empty)).unwrap_err().to_string();
        assert!(err.contains("empty.pem") && err.contains("holds no PEM certificate"), "{err}");
        let trust = Trust::load(None).unwrap();
        assert_eq!(trust, Trust::default());
        trust.rustls(None, None).unwrap();
        let err = trust.rustls(Some(&empty), None).unwrap_err().to_string();
        assert!(err.contains("empty.pem"), "{err}");
    }

    #[test]
    fn plain_http_to_another_machine_is_said_and_loopback_is_quiet() {
        let said = crate::credentials::permissions::tests::warnings_during(|| {
            warn_if_plain("Salesforce login_url", "http://login.example.com");
            warn_if_plain("Salesforce login_url", "http://127.0.0.1:8080");
            warn_if_plain("Salesforce login_url", "https://login.example.com");
        });
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(said.contains("plain HTTP") && said.contains("http://login.example.com"), "{said}");
    }

    #[test]
    fn loopback_is_this_machine_only() {
        assert!(
            is_loopback("http://127.0.0.1:8080/x") && is_loopback("http://localhost") && is_loopback("http://[::1]:1")
        );
        assert!(
            !is_loopback("http://login.salesforce.com") && !is_loopback("http://10.0.0.1") && !is_loopback("nonsense")
        );
    }
}
