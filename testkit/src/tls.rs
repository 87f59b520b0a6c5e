//! A private certificate authority made for one test: a CA, a server certificate for `localhost`
//! and `127.0.0.1` and a client certificate, each written as PEM files into a temporary directory,
//! so TLS is tested against real servers without a certificate checked into the repository.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use tempfile::TempDir;

/// The files of a test PKI. `other_ca` is a second, unrelated CA: trusting it instead of `ca` is
/// how a test shows that verification is on.
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for certificates");
        let (ca_params, ca_key) = ca("bulkflow test CA");
        let ca_cert = ca_params.clone().self_signed(&ca_key).expect("self-signing the CA");
        let issuer = Issuer::new(ca_params, ca_key);
        write(dir.path(), "ca.pem", &ca_cert.pem());

        let mut server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server certificate names");
        server.distinguished_name.push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().expect("a server key");
        let server_cert = server.signed_by(&server_key, &issuer).expect("signing the server certificate");
        write(dir.path(), "server.pem", &server_cert.pem());
        write(dir.path(), "server.key", &server_key.serialize_pem());

        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client certificate");
        client.distinguished_name.push(DnType::CommonName, "bulkflow");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().expect("a client key");
        let client_cert = client.signed_by(&client_key, &issuer).expect("signing the client certificate");
        write(dir.path(), "client.pem", &client_cert.pem());
        write(dir.path(), "client.key", &client_key.serialize_pem());

        let (other_params, other_key) = ca("another CA");
        let other = other_params.self_signed(&other_key).expect("self-signing the other CA");
        write(dir.path(), "other-ca.pem", &other.pem());
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params, KeyPair::generate().expect("a CA key"))
}

fn write(dir: &Path, name: &str, pem: &str) {
    std::fs::write(dir.join(name), pem).unwrap_or_else(|e| panic!("writing {name}: {e}"));
}
