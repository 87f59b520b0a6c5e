//! Loading a `salesforce_bulkapi_query_job` task: the query an operation needs, `job_id` where one
//! is read, `deleted_records` where it applies.

use super::config::{BulkQueryJobConfig, Operation};
use crate::flow::TaskKind;
use crate::flow::load::TaskLoader;

/// The most rows `batch_size` and `max_records` may ask for: far past what any page or batch
/// needs, and well short of what would exhaust memory on one page.
pub const MAX_BATCH_ROWS: usize = 1_000_000;

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let (node, path) = (l.node, l.path);
    let config = l.decode::<BulkQueryJobConfig>()?;
    let mut query = None;
    match (config.operation, &config.query) {
        (Operation::Create, None) => {
            l.error(
                node.mark,
                format!("{path}.query"),
                "`operation: create` needs a `query` (inline SOQL or `resource:`)",
            );
            return None;
        }
        (Operation::Create, Some(q)) => query = Some(l.query_template(q)?),
        (_, Some(q)) => {
            l.warning(
                q.mark,
                q.path.clone(),
                format!("`query` is only used by `operation: create`; ignored for `{:?}`", config.operation),
            );
        }
        _ => {}
    }
    if config.deleted_records && !matches!(config.operation, Operation::GetResults | Operation::Create) {
        l.error(
            node.mark,
            format!("{path}.deleted_records"),
            "`deleted_records` belongs to `operation: create` (recorded with the run) or `get_results`",
        );
        return None;
    }
    if config.operation != Operation::Create && config.job_id.is_none() {
        l.error(
            node.mark,
            format!("{path}.job_id"),
            format!("`operation: {}` needs a `job_id`", op_name(config.operation)),
        );
        return None;
    }
    for (key, value) in [("batch_size", config.batch_size), ("max_records", config.max_records)] {
        if let Some(n) = value.filter(|n| n.get() > MAX_BATCH_ROWS) {
            let at = node.get(key).map_or(node.mark, |n| n.mark);
            l.error(
                at,
                format!("{path}.{key}"),
                format!(
                    "`{key}: {n}` is past the limit of {MAX_BATCH_ROWS} rows: a batch is held whole in memory and \
                     travels as one bus message"
                ),
            );
            return None;
        }
    }
    l.credentials_warning(node, path, Some(&config.credentials_path));
    Some(TaskKind::BulkQueryJob { config, query })
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "create",
        Operation::Get => "get",
        Operation::GetResults => "get_results",
        Operation::Abort => "abort",
        Operation::Delete => "delete",
    }
}
