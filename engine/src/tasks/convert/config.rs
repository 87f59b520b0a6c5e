use serde::Deserialize;

use crate::flow::located::Located;
use crate::flow::resource::ResourceRef;

/// Casts Bulk API batches (all text) to a schema's types.
///
/// ```yaml
/// - convert:
///     name: cast_schema
///     target_format: arrow
///     schema:
///       resource: salesforce/schema_account.json
///     extra_columns: drop          # or `error`; columns the schema does not name
///     rejects: /var/lib/bulkflow/rejects/account   # optional
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertConfig {
    pub target_format: TargetFormat,
    pub schema: Located<ResourceRef>,
    #[serde(default)]
    pub extra_columns: ExtraColumns,
    /// A local directory: rows that cannot be cast are written to `<rejects>/<batch id>.jsonl` and
    /// the rest of the batch goes on. Without it, one bad value fails its whole batch.
    pub rejects: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetFormat {
    Arrow,
}

pub use crate::schema::cast::ExtraColumns;
