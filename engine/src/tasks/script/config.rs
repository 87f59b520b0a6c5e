use serde::Deserialize;

use crate::flow::located::Located;

/// Runs Rhai against each event.
///
/// ```yaml
/// - script:
///     name: filter_final_results
///     code: |
///       if event.meta.job_state == "JobComplete" { event } else { () }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptConfig {
    pub code: Located<String>,
    /// Overrides the operations limit for a script that legitimately does a lot of work.
    pub max_operations: Option<u64>,
}
