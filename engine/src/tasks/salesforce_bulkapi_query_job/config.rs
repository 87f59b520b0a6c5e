use std::num::NonZeroUsize;

use serde::Deserialize;

pub use crate::salesforce::options::{ColumnDelimiter, ContentType, LineEnding, QueryOperation};

use crate::flow::located::Located;
use crate::flow::resource::ResourceOrInline;
use crate::flow::template::Template;

/// Bulk API 2.0 query jobs: create one, read its info or its results, abort or delete it.
///
/// ```yaml
/// - salesforce_bulkapi_query_job:
///     name: query_account
///     operation: create
///     credentials_path: /etc/sfdc/credentials.json
///     query_operation: query
///     query:
///       resource: salesforce/query_account.soql
///     content_type: csv
///     column_delimiter: comma
///     line_ending: lf
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkQueryJobConfig {
    pub operation: Operation,
    pub credentials_path: String,
    pub query_operation: Option<QueryOperation>,
    pub query: Option<Located<ResourceOrInline>>,
    pub content_type: Option<ContentType>,
    pub column_delimiter: Option<ColumnDelimiter>,
    pub line_ending: Option<LineEnding>,
    pub job_id: Option<Template>,
    /// Rows per Arrow batch for `get_results`.
    pub batch_size: Option<NonZeroUsize>,
    pub has_header: Option<bool>,
    /// Page-size hint sent as `maxRecords`.
    pub max_records: Option<NonZeroUsize>,
    /// Overrides the engine's default API version (e.g. `"63.0"`).
    pub api_version: Option<String>,
    /// The run's results end with one more batch: the records Salesforce reports deleted since
    /// the flow's last written run (an hour of overlap), as tombstones (`Id`, `IsDeleted` true,
    /// `SystemModstamp` the deletion time) for writers with `change_type: auto`. It catches the
    /// hard deletes a `queryAll` job cannot see. On `create` it is recorded with the run, so
    /// whichever flow reads the run's results (the seed's listener, unchanged) adds the batch;
    /// on `get_results` it applies to every run that task reads.
    #[serde(default)]
    pub deleted_records: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Get,
    GetResults,
    Abort,
    Delete,
}
