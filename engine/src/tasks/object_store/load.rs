//! Loading a `object_store` task: Hive partitioning with keys to partition by.

use crate::flow::TaskKind;
use crate::flow::load::{TaskLoader, at};

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let (node, path) = (l.node, l.path);
    let c = l.decode::<super::config::ObjectStoreConfig>()?;
    if let Some(h) = &c.hive_partition_options
        && h.enabled
        && h.partition_keys.is_empty()
    {
        l.error(
            at(node, "hive_partition_options"),
            format!("{path}.hive_partition_options.partition_keys"),
            "Hive partitioning is enabled but no `partition_keys` are given (EventDate, EventHour)",
        );
        return None;
    }
    l.credentials_warning(node, path, c.credentials_path.as_deref());
    Some(TaskKind::ObjectStore(c))
}
