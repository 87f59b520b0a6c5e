//! The BigQuery warehouse: each batch goes to the table's `_default` stream with the Storage Write
//! API v1 (`AppendRows`, Arrow rows), every row marked `_CHANGE_TYPE` `UPSERT` or `DELETE`, so
//! BigQuery applies it by the table's primary key `Id`.
//!
//! Idempotency comes from that upsert, not from stream offsets: BigQuery takes `_CHANGE_TYPE` rows
//! only on the `_default` stream, which refuses offsets. An append retried after a lost answer (or
//! a batch the bus delivers again) writes the same rows under the same `Id`s and leaves the table as
//! it was. A delete of an `Id` that is gone is a no-op, so deletes repeat safely too.
//!
//! Requests stay under the API's 10 MB limit: a larger batch goes as several appends, each applied
//! on its own (BigQuery has no transaction across appends); a failure part way is retried whole,
//! which the upsert absorbs.

pub mod auth;
pub mod rows;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use googleapis_tonic_google_cloud_bigquery_storage_v1::google::cloud::bigquery::storage::v1::{
    AppendRowsRequest, ArrowRecordBatch, ArrowSchema, append_rows_request, append_rows_response,
    big_query_write_client::BigQueryWriteClient,
};
use tonic::transport::{Channel, Endpoint};

use crate::tls::Trust;

use self::auth::TokenSource;
use super::sweep::{SweepOutcome, SweepPart};
use super::{ChangeType, Warehouse, WarehouseError};
use crate::runtime::processor::BoxFuture;

/// The Storage Write API's endpoint.
pub const GOOGLE_ENDPOINT: &str = "https://bigquerystorage.googleapis.com";
/// How long a batch keeps retrying an unavailable service before the task's own retry takes over.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// One `AppendRows` call, from request to answer (Google's own clients allow it a few minutes
/// for 10 MB; a batch here is at most 8 MiB).
const APPEND_TIMEOUT: Duration = Duration::from_secs(120);
/// Appends are kept under this many encoded bytes (the API refuses requests over 10 MB).
const REQUEST_LIMIT: usize = 8 * 1024 * 1024;

/// `project.dataset.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub project: String,
    pub dataset: String,
    pub table: String,
}

impl TableRef {
    /// The table's default stream, the only one that takes `_CHANGE_TYPE` rows.
    pub fn default_stream(&self) -> String {
        format!("projects/{}/datasets/{}/tables/{}/streams/_default", self.project, self.dataset, self.table)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.project, self.dataset, self.table)
    }
}

pub struct BigQueryWarehouse {
    table: TableRef,
    channel: Channel,
    /// `None` on an emulator, which takes no credentials.
    tokens: Option<Arc<TokenSource>>,
    retry_for: Duration,
    /// One call's deadline: [`APPEND_TIMEOUT`] but in tests.
    append_timeout: Duration,
}

impl BigQueryWarehouse {
    /// Plain gRPC to an emulator (`BIGQUERY_EMULATOR_HOST`, `host:port`), without auth.
    pub fn emulator(host: &str, table: TableRef) -> Result<Self, WarehouseError> {
        let uri = if host.contains("://") { host.to_string() } else { format!("http://{host}") };
        let endpoint = Endpoint::from_shared(uri).map_err(|e| WarehouseError::Rejected {
            table: table.to_string(),
            message: format!("BIGQUERY_EMULATOR_HOST `{host}` is not host:port: {e}"),
        })?;
        Ok(Self {
            table,
            channel: endpoint.connect_lazy(),
            tokens: None,
            retry_for: RETRY_FOR,
            append_timeout: APPEND_TIMEOUT,
        })
    }

    /// BigQuery itself over TLS (the system's roots), with the service account's tokens.
    pub fn google(table: TableRef, tokens: Arc<TokenSource>, trust: &Trust) -> Result<Self, WarehouseError> {
        let endpoint = Endpoint::from_static(GOOGLE_ENDPOINT)
            .tls_config(trust.tonic())
            .map_err(|e| WarehouseError::Rejected { table: table.to_string(), message: format!("TLS setup: {e}") })?;
        Ok(Self {
            table,
            channel: endpoint.connect_lazy(),
            tokens: Some(tokens),
            retry_for: RETRY_FOR,
            append_timeout: APPEND_TIMEOUT,
        })
    }

    pub fn table(&self) -> &TableRef {
        &self.table
    }

    fn rejected(&self, message: String) -> WarehouseError {
        WarehouseError::Rejected { table: self.table.to_string(), message }
    }

    fn unavailable(&self, message: String) -> WarehouseError {
        WarehouseError::Unavailable { table: self.table.to_string(), message }
    }

    /// A gRPC status as a warehouse error: codes the API documents as transient are retryable.
    fn status_error(&self, code: tonic::Code, message: &str) -> WarehouseError {
        use tonic::Code::*;
        let text = format!("{}: {message}", code_name(code));
        match code {
            Unavailable | Internal | DeadlineExceeded | ResourceExhausted | Aborted | Unknown | Cancelled
            | Unauthenticated => self.unavailable(text),
            _ => self.rejected(text),
        }
    }

    /// One `AppendRows` call carrying one request; its one answer decides.
    async fn append_once(&self, schema: &[u8], batch: &[u8]) -> Result<(), WarehouseError> {
        let stream = self.table.default_stream();
        let request = AppendRowsRequest {
            write_stream: stream.clone(),
            // The default stream refuses offsets: see the module's note on idempotency.
            offset: None,
            trace_id: "bulkflow".into(),
            rows: Some(append_rows_request::Rows::ArrowRows(append_rows_request::ArrowData {
                writer_schema: Some(ArrowSchema { serialized_schema: schema.to_vec() }),
                rows: Some(ArrowRecordBatch { serialized_record_batch: batch.to_vec(), ..Default::default() }),
            })),
            ..Default::default()
        };
        let mut call = tonic::Request::new(futures_util::stream::iter([request]));
        let params = format!("write_stream={stream}")
            .parse()
            .map_err(|_| self.rejected("the table's name cannot be sent as request metadata".into()))?;
        call.metadata_mut().insert("x-goog-request-params", params);
        if let Some(tokens) = &self.tokens {
            let token = tokens.token().await.map_err(|e| {
                if e.is_retryable() { self.unavailable(e.to_string()) } else { self.rejected(e.to_string()) }
            })?;
            let bearer = format!("Bearer {token}")
                .parse()
                .map_err(|_| self.rejected("the access token is not valid request metadata".into()))?;
            call.metadata_mut().insert("authorization", bearer);
        }
        let mut client = BigQueryWriteClient::new(self.channel.clone());
        let answer = async { client.append_rows(call).await?.into_inner().message().await }.await;
        match answer {
            Ok(Some(response)) => {
                if let Some(first) = response.row_errors.first() {
                    return Err(self.rejected(format!(
                        "{} rows refused; row {}: {}",
                        response.row_errors.len(),
                        first.index,
                        first.message
                    )));
                }
                match response.response {
                    Some(append_rows_response::Response::AppendResult(_)) => Ok(()),
                    Some(append_rows_response::Response::Error(status)) => {
                        Err(self.status_error(tonic::Code::from_i32(status.code), &status.message))
                    }
                    None => Err(self.unavailable("an answer with neither a result nor an error".into())),
                }
            }
            Ok(None) => Err(self.unavailable("the stream closed without an answer".into())),
            Err(status) => {
                if status.code() == tonic::Code::Unauthenticated
                    && let Some(tokens) = &self.tokens
                {
                    tokens.invalidate().await;
                }
                Err(self.status_error(status.code(), status.message()))
            }
        }
    }

    /// Appends with retries on transient errors for `retry_for`.
    async fn append(&self, schema: &[u8], batch: &[u8]) -> Result<(), WarehouseError> {
        let deadline = Instant::now() + self.retry_for;
        let mut backoff = Duration::from_millis(100);
        loop {
            // A call the server took and never answers (a half-open connection) must end, or
            // the batch and every batch behind it wait for ever.
            let once =
                tokio::time::timeout(self.append_timeout, self.append_once(schema, batch)).await.unwrap_or_else(|_| {
                    Err(self.unavailable(format!("no answer to AppendRows within {:?}", self.append_timeout)))
                });
            match once {
                Ok(()) => {
                    crate::fault::point("warehouse.bigquery_appended");
                    return Ok(());
                }
                Err(e) if e.is_retryable() && Instant::now() + backoff < deadline => {
                    tracing::warn!(table = %self.table, error = %e, "BigQuery append failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The code as gRPC spells it (`INVALID_ARGUMENT`), as Google's docs and messages do.
fn code_name(code: tonic::Code) -> String {
    let debug = format!("{code:?}");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl Warehouse for BigQueryWarehouse {
    fn apply<'a>(&'a self, batch: &'a RecordBatch, change: ChangeType) -> BoxFuture<'a, Result<(), WarehouseError>> {
        Box::pin(async move {
            if batch.num_rows() == 0 {
                return Ok(());
            }
            let prepared = rows::prepare(batch, change).map_err(|u| WarehouseError::Schema {
                table: self.table.to_string(),
                column: u.column,
                problem: u.problem,
            })?;
            let encode = |b: &RecordBatch| {
                rows::encode(b).map_err(|e| self.rejected(format!("encoding the batch as Arrow IPC: {e}")))
            };
            let whole = encode(&prepared)?;
            let total = whole.schema.len() + whole.batch.len();
            for part in rows::slices(&prepared, total, REQUEST_LIMIT) {
                let encoded = if part.num_rows() == prepared.num_rows() { &whole } else { &encode(&part)? };
                self.append(&encoded.schema, &encoded.batch).await?;
            }
            tracing::debug!(table = %self.table, rows = batch.num_rows(), change = ?change, "applied batch");
            Ok(())
        })
    }

    /// The Storage Write API appends and deletes by key; removing every row outside a set needs a
    /// DML job, which this warehouse does not run.
    fn sweep<'a>(
        &'a self,
        _batch: &'a RecordBatch,
        _part: &'a SweepPart,
    ) -> BoxFuture<'a, Result<SweepOutcome, WarehouseError>> {
        Box::pin(async { Ok(SweepOutcome::Unsupported) })
    }
}

#[cfg(test)]
impl BigQueryWarehouse {
    fn with_retry_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    fn with_append_timeout(mut self, timeout: Duration) -> Self {
        self.append_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod code_tests {
    #[test]
    fn codes_are_spelled_as_grpc_spells_them() {
        assert_eq!(super::code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(super::code_name(tonic::Code::NotFound), "NOT_FOUND");
    }
}
