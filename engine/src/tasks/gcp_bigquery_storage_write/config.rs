use serde::Deserialize;

use crate::flow::template::Template;
use crate::warehouse::ChangeType;

/// Upserts batches into BigQuery through the Storage Write API.
///
/// ```yaml
/// - gcp_bigquery_storage_write:
///     name: write_to_data_warehouse
///     credentials_path: /etc/gcp/credentials.json
///     project_id: "{{env.GCP_PROJECT_ID}}"
///     dataset_id: salesforce
///     table_id: account
///     change_type: upsert    # or delete, or auto: rows with IsDeleted true are deleted
/// ```
///
/// No `deletes: soft` here: a BigQuery upsert replaces the whole row, so a tombstone carrying
/// only `Id` would blank the row it meant to mark.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigQueryWriteConfig {
    pub credentials_path: Option<String>,
    pub project_id: Template,
    pub dataset_id: Template,
    pub table_id: Template,
    #[serde(default)]
    pub change_type: ChangeType,
}
