//! The `eventbus.v1.PubSub` service: every RPC authenticates by its metadata first.

use std::pin::Pin;
use std::sync::Arc;

use bulkflow_pubsub_proto::pub_sub_server::PubSub;
use bulkflow_pubsub_proto::{
    FetchRequest, FetchResponse, ManagedFetchRequest, ManagedFetchResponse, PublishRequest, PublishResponse,
    PublishResult, SchemaInfo, SchemaRequest, TopicInfo, TopicRequest,
};
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};

use super::log::{self, ReplayLog};
use super::status::{self, SCHEMA_NOT_FOUND};
use super::subscribe;
use super::{PubSubSettings, PubSubStats, auth, avro, topic_not_found};
use crate::state::AppState;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub struct Service {
    pub app: Arc<AppState>,
    pub log: Arc<ReplayLog>,
    pub settings: PubSubSettings,
    pub stats: Arc<PubSubStats>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

#[tonic::async_trait]
impl PubSub for Service {
    type SubscribeStream = BoxStream<FetchResponse>;
    type PublishStreamStream = BoxStream<PublishResponse>;
    type ManagedSubscribeStream = BoxStream<ManagedFetchResponse>;

    async fn subscribe(
        &self,
        request: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = auth::check(&self.app, request.metadata())?;
        let (tx, rx) = mpsc::channel(4);
        let stream = self.stream(caller, tx);
        let mut inbound = request.into_inner();
        if let Some(opened) = stream.open(&mut inbound).await? {
            tokio::spawn(stream.run(inbound, opened));
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_schema(&self, request: Request<SchemaRequest>) -> Result<Response<SchemaInfo>, Status> {
        auth::check(&self.app, request.metadata())?;
        let id = request.into_inner().schema_id;
        if id != avro::schema_id() {
            return Err(status::error(Code::NotFound, SCHEMA_NOT_FOUND, &format!("no schema `{id}`")));
        }
        Ok(Response::new(SchemaInfo {
            schema_json: avro::SCHEMA_JSON.to_string(),
            schema_id: id,
            rpc_id: crate::ids::new_uuid(),
        }))
    }

    async fn get_topic(&self, request: Request<TopicRequest>) -> Result<Response<TopicInfo>, Status> {
        auth::check(&self.app, request.metadata())?;
        let name = request.into_inner().topic_name;
        if name != avro::TOPIC {
            return Err(topic_not_found(&name));
        }
        Ok(Response::new(TopicInfo {
            topic_name: name,
            tenant_guid: self.app.identity.org_id.clone(),
            can_publish: true,
            can_subscribe: true,
            schema_id: avro::schema_id(),
            rpc_id: crate::ids::new_uuid(),
        }))
    }

    /// Appends the events as given: like Salesforce, the server does not validate Avro payloads.
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<PublishResponse>, Status> {
        auth::check(&self.app, request.metadata())?;
        let request = request.into_inner();
        if request.topic_name != avro::TOPIC {
            return Err(topic_not_found(&request.topic_name));
        }
        let results = request
            .events
            .into_iter()
            .map(|event| {
                let correlation_key = event.id.clone();
                let seq = self.log.append(&request.topic_name, event);
                PublishResult { replay_id: log::encode(seq), error: None, correlation_key }
            })
            .collect();
        Ok(Response::new(PublishResponse { results, schema_id: avro::schema_id(), rpc_id: crate::ids::new_uuid() }))
    }

    async fn publish_stream(
        &self,
        _request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        Err(Status::unimplemented("PublishStream is not simulated"))
    }

    async fn managed_subscribe(
        &self,
        request: Request<Streaming<ManagedFetchRequest>>,
    ) -> Result<Response<Self::ManagedSubscribeStream>, Status> {
        let caller = auth::check(&self.app, request.metadata())?;
        let (tx, rx) = mpsc::channel(4);
        let stream = self.stream(caller, tx);
        let mut inbound = request.into_inner();
        if let Some(opened) = stream.open_managed(&mut inbound).await? {
            tokio::spawn(stream.run(inbound, opened));
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl Service {
    fn stream<P>(&self, caller: auth::Caller, out: mpsc::Sender<Result<P, Status>>) -> subscribe::Stream<P> {
        subscribe::Stream {
            app: self.app.clone(),
            log: self.log.clone(),
            settings: self.settings.clone(),
            stats: self.stats.clone(),
            caller,
            out,
            shutdown: self.shutdown.clone(),
        }
    }
}
