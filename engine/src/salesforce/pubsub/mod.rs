//! The Pub/Sub API client: where it is ([`endpoint`]), how a call carries the session (`authed`),
//! what its errors say, and the calls made before subscribing (the topic, its schemas, decoded by
//! [`decode`]). Subscribing itself (credit, replay ids, managed subscriptions) belongs to the
//! subscriber task that keeps the stream.

pub mod decode;
pub mod endpoint;

use std::sync::Arc;

use bulkflow_pubsub_proto::pub_sub_client::PubSubClient;
use bulkflow_pubsub_proto::{ERROR_CODE_KEY, SchemaRequest, TopicRequest};
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::SalesforceClient;
use super::auth::Session;
use decode::Schemas;

/// The Salesforce error code of a failed call (`sfdc.platform.eventbus.grpc...`), or "".
pub fn error_code(status: &Status) -> &str {
    status.metadata().get(ERROR_CODE_KEY).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A failed call as one line: the gRPC code, Salesforce's error code, its message.
pub fn describe(status: &Status) -> String {
    let code = error_code(status);
    if code.is_empty() {
        format!("{:?}: {}", status.code(), status.message())
    } else {
        format!("{:?} {code}: {}", status.code(), status.message())
    }
}

/// `body` with the session's headers (`accesstoken`, `instanceurl`, `tenantid`).
pub fn authed<T>(session: &Session, body: T) -> Result<Request<T>, String> {
    let mut req = Request::new(body);
    let md = req.metadata_mut();
    // Values are checked for header syntax only; the token is never part of a message.
    let token = session.access_token.expose().parse().map_err(|_| "the access token is not a valid header value")?;
    md.insert("accesstoken", token);
    md.insert("instanceurl", session.instance_url.parse().map_err(|_| "the instance URL is not a valid header value")?);
    md.insert("tenantid", session.org_id.parse().map_err(|_| "the org id is not a valid header value")?);
    Ok(req)
}

/// The deadline of a unary call (`GetTopic`, `GetSchema`): each answers in milliseconds, so one
/// that does not answer in a minute is not going to.
const UNARY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `body` with the session's headers and the unary deadline.
fn unary<T>(session: &Session, body: T) -> Result<Request<T>, String> {
    let mut request = authed(session, body)?;
    request.set_timeout(UNARY_TIMEOUT);
    Ok(request)
}

/// Logs in (again, once, on an auth error), checks that `topic` exists and may be subscribed to,
/// and loads its schema; the session to subscribe with.
pub async fn check_topic(
    client: &SalesforceClient,
    api: &mut PubSubClient<Channel>,
    topic: &str,
    schemas: &mut Schemas,
) -> Result<Arc<Session>, String> {
    let mut session = client.session().await.map_err(|e| e.to_string())?;
    let request = |session: &Session| unary(session, TopicRequest { topic_name: topic.to_string() });
    let info = match api.get_topic(request(&session)?).await {
        Err(s) if error_code(&s).ends_with("auth.error") => {
            session = client.refresh(&session).await.map_err(|e| e.to_string())?;
            api.get_topic(request(&session)?).await
        }
        other => other,
    }
    .map_err(|s| format!("GetTopic `{topic}`: {}", describe(&s)))?
    .into_inner();
    if !info.can_subscribe {
        return Err(format!("topic `{topic}` cannot be subscribed to by this user"));
    }
    load_schema(api, &session, schemas, &info.schema_id).await.map_err(|e| e.to_string())?;
    Ok(session)
}

/// Why a schema could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The server does not know the id, or what it gave is not Avro: asking again will not help.
    #[error("{0}")]
    Unresolvable(String),
    /// The call failed (the network, the session): asking again may.
    #[error("{0}")]
    Unavailable(String),
}

/// Fetches schema `id` unless it is cached.
pub async fn load_schema(
    api: &mut PubSubClient<Channel>,
    session: &Session,
    schemas: &mut Schemas,
    id: &str,
) -> Result<(), SchemaError> {
    if schemas.has(id) {
        return Ok(());
    }
    let request = unary(session, SchemaRequest { schema_id: id.to_string() }).map_err(SchemaError::Unavailable)?;
    let info = api
        .get_schema(request)
        .await
        .map_err(|s| {
            let message = format!("GetSchema `{id}`: {}", describe(&s));
            match s.code() {
                tonic::Code::NotFound | tonic::Code::InvalidArgument => SchemaError::Unresolvable(message),
                _ => SchemaError::Unavailable(message),
            }
        })?
        .into_inner();
    schemas.add(id, &info.schema_json).map_err(|e| SchemaError::Unresolvable(e.to_string()))
}
