use serde::Deserialize;

use crate::flow::resource::ResourceRef;
use crate::flow::template::Template;
use crate::warehouse::{ChangeType, DeleteMode};

/// Upserts batches into a PostgreSQL table by `"Id"`.
///
/// ```yaml
/// - postgres_write:
///     name: write_to_warehouse
///     url: "{{env.WAREHOUSE_URL}}"
///     schema: salesforce
///     table: account
///     change_type: auto      # upsert (default), delete, or auto: follow IsDeleted
///     deletes: soft          # hard (default): remove the row; soft: mark it `_deleted`
///     create_table: true
///     schema_resource: { resource: salesforce/schema_account.json }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresWriteConfig {
    pub url: Option<Template>,
    pub credentials_path: Option<String>,
    pub schema: Option<String>,
    pub table: String,
    #[serde(default)]
    pub change_type: ChangeType,
    #[serde(default)]
    pub deletes: DeleteMode,
    #[serde(default)]
    pub create_table: bool,
    pub schema_resource: Option<crate::flow::located::Located<ResourceRef>>,
}
