//! The NATS bus against the conformance suite, on a real `nats-server` per test; a restart stops
//! the server (SIGTERM) and starts it again on the same port and store.

use std::sync::Arc;

use bulkflow_testkit::nats::NatsServer;

use super::{Auth, NatsBus};
use crate::bus::Bus;
use crate::bus::conformance::{Fixture, conformance_tests};
use crate::runtime::processor::BoxFuture;

pub(crate) struct NatsFixture {
    server: NatsServer,
    bus: NatsBus,
}

impl NatsFixture {
    pub(crate) async fn new() -> Self {
        let server = tokio::task::spawn_blocking(NatsServer::start).await.unwrap();
        let bus = NatsBus::connect(&server.url(), &Auth::None).await.unwrap();
        Self { server, bus }
    }
}

impl Fixture for NatsFixture {
    fn bus(&self) -> Arc<dyn Bus> {
        Arc::new(self.bus.clone())
    }

    fn exact_delivery_counts(&self) -> bool {
        false
    }

    fn restart(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Graceful: a SIGKILLed nats-server may lose recent acks (it writes consumer state
            // lazily), which at-least-once allows but would make this test about timing.
            tokio::task::block_in_place(|| self.server.restart_graceful());
            // The client reconnects by itself; a fresh one makes the test independent of when.
            self.bus = NatsBus::connect(&self.server.url(), &Auth::None).await.unwrap();
        })
    }
}

conformance_tests!(NatsFixture::new());

/// A pull request the server never answers (it froze, then was killed) must not hold the
/// consumer forever: the fetch comes back, and fetches after the restart receive again. async-nats
/// gives a no-wait fetch no timer of its own, so before the bound this hung for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_the_server_never_answers_returns_and_fetching_resumes() {
    use std::time::{Duration, Instant};

    use crate::bus::{ConsumerSpec, Outgoing, StreamSpec};

    let mut f = NatsFixture::new().await;
    let bus = f.bus();
    bus.ensure_stream(&StreamSpec::new("s", vec!["s.>".into()])).await.unwrap();
    let spec = ConsumerSpec {
        stream: "s".into(),
        durable_name: "d".into(),
        filter_subject: "s.>".into(),
        ack_wait: Duration::from_secs(30),
        max_deliver: None,
        max_ack_pending: 100,
    };
    let mut consumer = bus.consumer(&spec).await.unwrap();
    f.server.freeze();
    let started = Instant::now();
    let wait = Duration::from_millis(200);
    let lost = tokio::spawn(async move {
        let r = consumer.fetch(1, wait).await;
        (consumer, r.map(|m| m.len()))
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| f.server.restart());
    let (mut consumer, result) =
        tokio::time::timeout(Duration::from_secs(30), lost).await.expect("the fetch came back").unwrap();
    let took = started.elapsed();
    // The bound by design: a no-wait request, a waiting one (its expiry plus grace), and the
    // no-wait request that follows a message, each cut off when unanswered.
    let bound = super::NO_WAIT_ANSWER * 2 + wait + super::WAIT_ANSWER_GRACE + Duration::from_secs(1);
    assert!(took < bound, "took {took:?} (bound {bound:?}): {result:?}");
    assert!(matches!(result, Ok(0) | Err(_)), "{result:?}");

    let message = Outgoing { subject: "s.a".into(), msg_id: "m1".into(), headers: vec![], payload: "x".into() };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut published = false;
    while !published && Instant::now() < deadline {
        published = bus.publish(message.clone(), Duration::from_secs(2)).await.is_ok();
    }
    assert!(published, "publishing after the restart");
    let mut received = Vec::new();
    while received.is_empty() && Instant::now() < deadline {
        if let Ok(m) = consumer.fetch(1, Duration::from_millis(500)).await {
            received = m;
        }
    }
    assert_eq!(received.len(), 1, "a fetch after the restart receives");
}

/// Connects through the registry with the credentials file `json` (plus the server's url), as a
/// flow naming that file would, and proves the connection by creating a stream.
async fn connect_with(server: &NatsServer, mut json: serde_json::Value) -> Result<(), crate::bus::BusError> {
    json["url"] = server.url().into();
    connect_as(json, None).await
}

/// [`connect_with`] with the url the credentials file names, and the files of `beside` (a
/// folder) copied next to it, where the file's relative paths find them.
async fn connect_as(json: serde_json::Value, beside: Option<&std::path::Path>) -> Result<(), crate::bus::BusError> {
    use crate::bus::StreamSpec;
    use crate::bus::registry::BusRegistry;
    use crate::credentials::CredentialsRoot;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/nats")).unwrap();
    for entry in beside.map(|b| std::fs::read_dir(b).unwrap()).into_iter().flatten() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join("etc/nats").join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("etc/nats/credentials.json"), json.to_string()).unwrap();
    let registry = BusRegistry::new(None, CredentialsRoot::new(Some(dir.path().into())));
    let bus = registry.bus("", Some("/etc/nats/credentials.json")).await?;
    bus.ensure_stream(&StreamSpec::new("s", vec!["s.>".into()])).await
}

/// Each way to authenticate that a credentials file can name, against a server that requires it;
/// a wrong secret fails with an error that does not show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_user_password_or_nkey_from_the_credentials_file_authenticates() {
    use serde_json::json;

    let server = tokio::task::spawn_blocking(|| NatsServer::start_with(&["--auth", "t0ken-s3cret"])).await.unwrap();
    connect_with(&server, json!({"token": "t0ken-s3cret"})).await.unwrap();
    let err = connect_with(&server, json!({"token": "wr0ng-t0ken"})).await.unwrap_err().to_string();
    assert!(!err.contains("wr0ng-t0ken"), "{err}");
    assert!(connect_with(&server, json!({})).await.is_err(), "no credentials, no connection");

    let server =
        tokio::task::spawn_blocking(|| NatsServer::start_with(&["--user", "bulkflow", "--pass", "pa55-s3cret"]))
            .await
            .unwrap();
    connect_with(&server, json!({"user": "bulkflow", "password": "pa55-s3cret"})).await.unwrap();
    let err = connect_with(&server, json!({"user": "bulkflow", "password": "wr0ng-pa55"})).await.unwrap_err();
    assert!(!err.to_string().contains("wr0ng-pa55"), "{err}");

    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let config = format!("authorization {{ users = [ {{ nkey: \"{}\" }} ] }}", user.public_key());
    let server = tokio::task::spawn_blocking(move || NatsServer::start_with_config(&config)).await.unwrap();
    connect_with(&server, json!({"nkey_seed": seed})).await.unwrap();
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    let err = connect_with(&server, json!({"nkey_seed": other})).await.unwrap_err();
    assert!(!err.to_string().contains(&other), "{err}");
}

/// A server that requires TLS and verifies clients: the credentials file's CA and client
/// certificate connect; without the certificate, with another CA, or with no TLS settings at all
/// (the server still asks for TLS, and the system's roots do not know its CA), no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_from_the_credentials_file() {
    use serde_json::json;

    let pki = bulkflow_testkit::tls::Pki::new();
    let config = format!(
        "tls {{\n cert_file: {:?}\n key_file: {:?}\n ca_file: {:?}\n verify: true\n timeout: 5\n}}\n",
        pki.server_cert(),
        pki.server_key(),
        pki.ca()
    );
    let server = tokio::task::spawn_blocking(move || NatsServer::start_with_config(&config)).await.unwrap();
    let tls_url = format!("tls://127.0.0.1:{}", server.port());
    let (ca, other, cert, key) = ("ca.pem", "other-ca.pem", "client.pem", "client.key");
    let connect_as = |json| connect_as(json, Some(pki.dir()));

    connect_as(json!({"url": tls_url, "tls_ca_file": ca, "tls_cert_file": cert, "tls_key_file": key}))
        .await
        .expect("the CA and the client certificate connect");
    // A nats:// url to a server that requires TLS upgrades, with the same checks.
    connect_as(json!({"url": server.url(), "tls_ca_file": ca, "tls_cert_file": cert, "tls_key_file": key}))
        .await
        .expect("nats:// to a TLS server upgrades");

    let err = connect_as(json!({"url": tls_url, "tls_ca_file": ca})).await.unwrap_err().to_string();
    assert!(err.contains("connecting to NATS"), "no client certificate: {err}");
    let err = connect_as(json!({"url": tls_url, "tls_ca_file": other, "tls_cert_file": cert, "tls_key_file": key}))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").to_lowercase().contains("certificate"), "another CA: {err:?}");
    let err = connect_as(json!({"url": server.url()})).await.unwrap_err();
    assert!(format!("{err:?}").to_lowercase().contains("certificate"), "the system's roots only: {err:?}");
    let err = connect_as(json!({"url": tls_url, "tls_ca_file": ca, "tls_cert_file": cert})).await.unwrap_err();
    assert!(err.to_string().contains("go together"), "{err}");
}
