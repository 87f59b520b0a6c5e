//! Salesforce over TLS, as Salesforce serves it: the simulator on HTTPS and its Pub/Sub API over
//! TLS, with a certificate of a CA made for the test. The client trusts that CA through its
//! settings (what `tls_ca_file` sets) and nothing else: without it, or with another CA, both the
//! login and the Pub/Sub call are refused by the client's own check.

use std::path::Path;

use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::salesforce::pubsub::decode::Schemas;
use bulkflow_engine::salesforce::pubsub::{check_topic, endpoint};
use bulkflow_engine::salesforce::{ClientSettings, Clients, SalesforceClient, SalesforceError};
use bulkflow_engine::tls::Trust;
use bulkflow_pubsub_proto::pub_sub_client::PubSubClient;
use bulkflow_sim::SimConfig;
use bulkflow_testkit::tls::Pki;
use serde_json::json;

const TOPIC: &str = "/event/BulkApi2JobEvent";

fn client(root: &Path, trust: Trust) -> std::sync::Arc<SalesforceClient> {
    let settings = ClientSettings { trust, ..ClientSettings::default() };
    Clients::new(CredentialsRoot::new(Some(root.to_path_buf())), "63.0", settings)
        .get(Path::new("/etc/sfdc/credentials.json"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_pubsub_over_tls_trust_the_ca_file_and_nothing_else() {
    let pki = Pki::new();
    let sim =
        SimConfig::new().records([("Account", 10)]).tls(pki.server_cert(), pki.server_key()).start().await.unwrap();
    let c = sim.credentials();
    assert!(sim.url().starts_with("https://127.0.0.1:"), "{}", sim.url());
    let pubsub_url = c.pubsub_url.clone().unwrap();
    assert!(pubsub_url.starts_with("https://"), "{pubsub_url}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/sfdc")).unwrap();
    let creds = json!({"client_id": c.client_id, "client_secret": c.client_secret, "login_url": c.login_url,
        "pubsub_url": pubsub_url});
    std::fs::write(dir.path().join("etc/sfdc/credentials.json"), creds.to_string()).unwrap();

    // Trusting the CA: a login over HTTPS, then GetTopic and GetSchema over gRPC with TLS.
    let trusting = client(dir.path(), Trust::load(Some(&pki.ca())).unwrap());
    let uri = endpoint::uri(None, trusting.credentials().pubsub_url.as_deref());
    let mut api = PubSubClient::new(endpoint::channel(&uri, trusting.trust()).unwrap());
    check_topic(&trusting, &mut api, TOPIC, &mut Schemas::default()).await.expect("TLS with the CA trusted");

    // The Pub/Sub channel alone without the CA: the login works, the gRPC call does not.
    let mut untrusting_api = PubSubClient::new(endpoint::channel(&uri, &Trust::default()).unwrap());
    let err = check_topic(&trusting, &mut untrusting_api, TOPIC, &mut Schemas::default()).await.unwrap_err();
    assert!(err.to_lowercase().contains("certificate") || err.contains("transport error"), "{err}");

    // The login without the CA, and with another CA.
    for trust in [Trust::default(), Trust::load(Some(&pki.other_ca())).unwrap()] {
        let described = format!("{trust:?}");
        let err = client(dir.path(), trust).session().await.unwrap_err();
        // Not retried: the same certificate would be met again.
        assert!(matches!(err, SalesforceError::Untrusted { .. }) && !err.is_retryable(), "{err:?}");
        let text = format!("{err} {err:?}").to_lowercase();
        assert!(text.contains("certificate") && text.contains("--tls-ca-file"), "login trusting {described}: {err}");
    }
}
