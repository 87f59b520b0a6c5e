//! The Pub/Sub API over real gRPC with the generated client: auth metadata, BulkApi2JobEvents for a
//! job, Avro by the served schema, credit, keepalive, idle close and the error-code trailer.

use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use bulkflow_pubsub_proto::pub_sub_client::PubSubClient;
use bulkflow_pubsub_proto::{
    FetchRequest, FetchResponse, ProducerEvent, PublishRequest, ReplayPreset, SchemaRequest, TopicRequest,
};
use bulkflow_sim::FaultConfig;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

use crate::common::{Org, config};

const TOPIC: &str = "/event/BulkApi2JobEvent";

async fn client(org: &Org) -> PubSubClient<Channel> {
    PubSubClient::connect(format!("http://{}", org.sim.pubsub_addr())).await.unwrap()
}

fn authed<T>(org: &Org, token: &str, body: T) -> Request<T> {
    let mut req = Request::new(body);
    let md = req.metadata_mut();
    md.insert("accesstoken", token.parse().unwrap());
    md.insert("instanceurl", org.sim.url().parse().unwrap());
    md.insert("tenantid", org.sim.org_id().parse().unwrap());
    req
}

struct Sub {
    tx: mpsc::Sender<FetchRequest>,
    rx: Streaming<FetchResponse>,
}

impl Sub {
    async fn open(org: &Org, preset: ReplayPreset, replay_id: Vec<u8>, n: i32) -> Result<Sub, Status> {
        let (tx, rx) = mpsc::channel(8);
        tx.send(FetchRequest {
            topic_name: TOPIC.into(),
            replay_preset: preset as i32,
            replay_id,
            num_requested: n,
            ..FetchRequest::default()
        })
        .await
        .unwrap();
        let rx = client(org).await.subscribe(authed(org, &org.token, ReceiverStream::new(rx))).await?.into_inner();
        Ok(Sub { tx, rx })
    }

    async fn ask(&self, n: i32) {
        self.tx.send(FetchRequest { num_requested: n, ..FetchRequest::default() }).await.unwrap();
    }

    async fn next(&mut self) -> Result<Option<FetchResponse>, Status> {
        tokio::time::timeout(Duration::from_secs(10), self.rx.message()).await.expect("a response within 10 s")
    }
}

fn error_code(status: &Status) -> String {
    status.metadata().get("error-code").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

fn field(record: &Value, name: &str) -> Option<String> {
    let Value::Record(fields) = record else { return None };
    match fields.iter().find(|(n, _)| n == name).map(|(_, v)| v) {
        Some(Value::Union(_, v)) => match &**v {
            Value::String(s) => Some(s.clone()),
            _ => None,
        },
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

async fn publish(org: &Org, n: usize) {
    let events = (0..n).map(|i| ProducerEvent { id: format!("e{i}"), ..ProducerEvent::default() }).collect();
    let resp = client(org)
        .await
        .publish(authed(
            org,
            &org.token,
            PublishRequest { topic_name: TOPIC.into(), events, ..PublishRequest::default() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.results.len(), n);
}

#[tokio::test]
async fn a_query_job_publishes_avro_job_state_and_final_events() {
    let org = Org::start(config(50)).await;
    let topic = client(&org)
        .await
        .get_topic(authed(&org, &org.token, TopicRequest { topic_name: TOPIC.into() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(topic.tenant_guid, org.sim.org_id());
    let schema = client(&org)
        .await
        .get_schema(authed(&org, &org.token, SchemaRequest { schema_id: topic.schema_id.clone() }))
        .await
        .unwrap()
        .into_inner();
    let schema = Schema::parse_str(&schema.schema_json).unwrap();

    let mut sub = Sub::open(&org, ReplayPreset::Latest, vec![], 10).await.unwrap();
    let job = org.create_ok("SELECT Id FROM Account").await;
    let mut seen = Vec::new();
    let mut last_replay: Option<Vec<u8>> = None;
    while !seen
        .iter()
        .any(|(t, _, r): &(String, String, Option<String>)| t == "RESULT" && r.as_deref() == Some("FINAL"))
    {
        let resp = sub.next().await.unwrap().expect("stream open");
        for e in resp.events {
            if let Some(prev) = &last_replay {
                assert!(e.replay_id > *prev, "replay ids grow");
            }
            last_replay = Some(e.replay_id.clone());
            let ev = e.event.unwrap();
            assert_eq!(ev.schema_id, topic.schema_id);
            let record = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
                .build()
                .unwrap()
                .read_value(&mut ev.payload.as_slice())
                .unwrap();
            assert_eq!(field(&record, "JobIdentifier").as_deref(), Some(job.as_str()));
            seen.push((
                field(&record, "Type").unwrap(),
                field(&record, "JobState").unwrap(),
                field(&record, "ResultType"),
            ));
        }
    }
    let states: Vec<_> = seen.iter().filter(|(t, _, _)| t == "JOB_STATE").map(|(_, s, _)| s.as_str()).collect();
    assert_eq!(states, ["UploadComplete", "InProgress", "JobComplete"]);
    assert_eq!(seen.last().unwrap().1, "JobComplete");
}

#[tokio::test]
async fn credit_is_summed_and_capped_at_100() {
    let org = Org::start(config(1)).await;
    let mut sub = Sub::open(&org, ReplayPreset::Latest, vec![], 80).await.unwrap();
    sub.ask(70).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish(&org, 150).await;
    let mut got = 0;
    while got < 100 {
        let resp = sub.next().await.unwrap().unwrap();
        got += resp.events.len();
        assert!(resp.pending_num_requested >= 0);
    }
    assert_eq!(got, 100, "no more than 100 outstanding");
    let more = tokio::time::timeout(Duration::from_millis(300), sub.rx.message()).await;
    assert!(more.is_err(), "nothing beyond the credit is sent");
    sub.ask(50).await;
    let resp = sub.next().await.unwrap().unwrap();
    assert_eq!(resp.events.len(), 50);
    assert_eq!(org.sim.pubsub_stats().max_requested_credit, 150);
}

#[tokio::test]
async fn keepalives_carry_the_latest_replay_id_and_an_idle_stream_is_closed() {
    let org = Org::start(
        config(1).pubsub_keepalive(Duration::from_millis(200)).pubsub_idle_close(Duration::from_millis(400)),
    )
    .await;
    let mut sub = Sub::open(&org, ReplayPreset::Latest, vec![], 1).await.unwrap();
    publish(&org, 1).await;
    let first = sub.next().await.unwrap().unwrap();
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.pending_num_requested, 0);
    // No credit left and no new request: closed after the idle time.
    assert!(sub.next().await.unwrap().is_none(), "the idle stream ends");
    assert_eq!(org.sim.pubsub_stats().idle_closes, 1);

    let mut sub = Sub::open(&org, ReplayPreset::Latest, vec![], 5).await.unwrap();
    let keepalive = sub.next().await.unwrap().unwrap();
    assert!(keepalive.events.is_empty());
    assert_eq!(keepalive.latest_replay_id, org.sim.latest_replay_id());
    assert_eq!(keepalive.pending_num_requested, 5);
}

#[tokio::test]
async fn auth_errors_and_replay_errors_carry_the_error_code_trailer() {
    let org = Org::start(config(1)).await;
    let mut bad = authed(&org, "not-a-token", TopicRequest { topic_name: TOPIC.into() });
    bad.metadata_mut().insert("accesstoken", "nope".parse().unwrap());
    let err = client(&org).await.get_topic(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.service.auth.error");

    publish(&org, 2).await;
    // Refused before the stream opens: the replay position is fixed when Subscribe returns.
    let err = Sub::open(&org, ReplayPreset::Custom, b"garbage".to_vec(), 5).await.err().unwrap();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted");

    // A good replay id resumes after it; the corruption fault refuses it once.
    let mut sub = Sub::open(&org, ReplayPreset::Custom, 1u64.to_be_bytes().to_vec(), 5).await.unwrap();
    let resp = sub.next().await.unwrap().unwrap();
    assert_eq!(resp.events.iter().map(|e| e.event.as_ref().unwrap().id.as_str()).collect::<Vec<_>>(), ["e1"]);
    org.sim.set_faults(FaultConfig { pubsub_corrupt_replay: 1, ..FaultConfig::default() });
    let err = Sub::open(&org, ReplayPreset::Custom, 1u64.to_be_bytes().to_vec(), 5).await.err().unwrap();
    assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted");

    // The token expires mid-stream: the stream ends with auth.error.
    let mut sub = Sub::open(&org, ReplayPreset::Latest, vec![], 5).await.unwrap();
    org.sim.set_faults(FaultConfig { revoke_tokens: true, ..FaultConfig::default() });
    let err = sub.next().await.unwrap_err();
    assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.service.auth.error");
}
