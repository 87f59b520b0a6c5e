//! Loading a `salesforce_pubsubapi_subscriber` task: credit within the Pub/Sub API's cap and a
//! topic it can name.

use crate::flow::TaskKind;
use crate::flow::load::{TaskLoader, at};

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let (node, path) = (l.node, l.path);
    let c = l.decode::<super::config::PubSubSubscriberConfig>()?;
    if let Some(n) = c.num_requested
        && n.get() > 100
    {
        l.error(
            at(node, "num_requested"),
            format!("{path}.num_requested"),
            "`num_requested` is at most 100 (the Pub/Sub API's cap)",
        );
        return None;
    }
    if !c.topic.name.starts_with("/event/") && !c.topic.name.starts_with("/data/") {
        l.error(
            node.get("topic").map_or(node.mark, |t| at(t, "name")),
            format!("{path}.topic.name"),
            format!("topic `{}` must start with `/event/` or `/data/`", c.topic.name),
        );
        return None;
    }
    l.credentials_warning(node, path, Some(&c.credentials_path));
    Some(TaskKind::PubSubSubscriber(c))
}
