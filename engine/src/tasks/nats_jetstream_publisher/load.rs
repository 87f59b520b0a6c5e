//! Loading a `nats_jetstream_publisher` task: its config, and a warning for a credentials file that
//! cannot be read.

use crate::flow::TaskKind;
use crate::flow::load::TaskLoader;

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let (node, path) = (l.node, l.path);
    let c = l.decode::<super::config::NatsPublisherConfig>()?;
    l.credentials_warning(node, path, c.credentials_path.as_deref());
    Some(TaskKind::NatsPublisher(c))
}
