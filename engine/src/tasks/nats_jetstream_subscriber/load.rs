//! Loading a `nats_jetstream_subscriber` task: no more backoff steps than deliveries.

use crate::flow::TaskKind;
use crate::flow::load::{TaskLoader, at};

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let (node, path) = (l.node, l.path);
    let c = l.decode::<super::config::NatsSubscriberConfig>()?;
    if let Some(max) = c.max_deliver
        && c.backoff.len() > max.get() as usize
    {
        l.error(
            at(node, "backoff"),
            format!("{path}.backoff"),
            format!(
                "{} backoff steps but `max_deliver` is {max}: a message is delivered at most {max} times",
                c.backoff.len()
            ),
        );
        return None;
    }
    l.credentials_warning(node, path, c.credentials_path.as_deref());
    Some(TaskKind::NatsSubscriber(c))
}
