//! Loading a `postgres_write` task: somewhere to connect to, and a schema for the table it is to
//! create.

use crate::flow::TaskKind;
use crate::flow::load::{TaskLoader, at};

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let (node, path) = (l.node, l.path);
    let config = l.decode::<super::config::PostgresWriteConfig>()?;
    if config.url.is_none() && config.credentials_path.is_none() {
        l.error(node.mark, format!("{path}.url"), "`postgres_write` needs a `url` or a `credentials_path` holding one");
        return None;
    }
    if config.create_table && config.schema_resource.is_none() {
        l.error(
            at(node, "create_table"),
            format!("{path}.schema_resource"),
            "`create_table: true` needs a `schema_resource` to create the table from",
        );
        return None;
    }
    let schema = match &config.schema_resource {
        Some(r) => Some(l.schema(r)?),
        None => None,
    };
    l.credentials_warning(node, path, config.credentials_path.as_deref());
    Some(TaskKind::PostgresWrite { config, schema })
}
