//! Managed subscriptions (`ManagedSubscribe`, beta): the server, not the client, keeps each
//! subscription's position. An admin creates one through the Tooling API
//! (`ManagedEventSubscription`: a developer name, a topic, a default replay); a stream names it by
//! id or developer name, starts after its last committed replay id (or at its default replay the
//! first time), and commits replay ids as the client finishes events.

use bulkflow_pubsub_proto::ManagedFetchRequest;
use tonic::{Code, Status, Streaming};

pub use super::registry::{CreateError, DefaultReplay, Registry, Subscription};
use super::status;
use super::subscribe::{Opened, Stream};

pub const NOT_FOUND: &str = "managed.subscription.not.found";
pub const STOPPED: &str = "managed.subscription.stopped";

impl<P: super::subscribe::Outbound> Stream<P> {
    /// Reads a managed stream's first request: the subscription it names, where it starts.
    pub async fn open_managed(&self, inbound: &mut Streaming<ManagedFetchRequest>) -> Result<Option<Opened>, Status> {
        self.stats.subscribes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let first = match inbound.message().await {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => return Ok(None),
        };
        let Some(subscription) = self.app.managed.find(&first.subscription_id, &first.developer_name) else {
            return Err(status::error(
                Code::NotFound,
                NOT_FOUND,
                &format!(
                    "no managed subscription `{}`",
                    if first.subscription_id.is_empty() { &first.developer_name } else { &first.subscription_id }
                ),
            ));
        };
        if !subscription.running {
            return Err(status::error(
                Code::FailedPrecondition,
                STOPPED,
                &format!("managed subscription `{}` is stopped", subscription.developer_name),
            ));
        }
        let cursor = match subscription.committed {
            // A commit that fell out of the retention window resumes at the oldest event kept.
            Some(seq) => seq.max(self.log.earliest()),
            None if subscription.default_replay == DefaultReplay::Earliest => self.log.earliest(),
            None => self.log.latest(),
        };
        let credit = self.credit(0, first.num_requested)?;
        Ok(Some(Opened { topic: subscription.topic, cursor, credit, managed: Some(subscription.id) }))
    }
}
