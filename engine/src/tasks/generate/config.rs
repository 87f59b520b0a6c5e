use serde::Deserialize;

use crate::flow::duration::HumanDuration;
use crate::flow::located::Located;

/// Fires the flow on a schedule. Each tick opens a run and carries `system_info.last_run_time`.
/// The expression is checked when the flow loads, by building its [`crate::schedule::Trigger`].
///
/// ```yaml
/// - generate:
///     name: trigger
///     cron: "*/5 * * * *"     # 5 fields, minute first; or: interval: 10m
///     timezone: Europe/Paris  # optional; UTC by default
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    pub cron: Option<Located<String>>,
    pub interval: Option<Located<HumanDuration>>,
    pub timezone: Option<Located<String>>,
}
