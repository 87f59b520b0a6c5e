//! The Storage Write API's `AppendRows` as BigQuery answers it on a table's `_default` stream:
//! the first request names the stream and carries the writer's Arrow schema; each request's rows
//! are checked against the table and applied whole or refused whole; one answer per request, in
//! order. Offsets are refused, as on BigQuery's default stream.

use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use futures_util::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::Tables;
use super::proto::append_rows_request::Rows;
use super::proto::append_rows_response::{AppendResult, Response as Answer};
use super::proto::big_query_write_server::BigQueryWrite;
use super::proto::{AppendRowsRequest, AppendRowsResponse};

pub struct WriteService {
    pub tables: Arc<Tables>,
}

/// `projects/P/datasets/D/tables/T/streams/_default` → `P.D.T`.
fn table_of(stream: &str) -> Result<String, Status> {
    let parts: Vec<&str> = stream.split('/').collect();
    match parts.as_slice() {
        ["projects", p, "datasets", d, "tables", t, "streams", s] => {
            if *s != "_default" {
                return Err(Status::not_found(format!(
                    "write stream `{stream}` not found: the fake serves only tables' `_default` streams"
                )));
            }
            Ok(format!("{p}.{d}.{t}"))
        }
        _ => Err(Status::invalid_argument(format!(
            "`{stream}` is not a write stream name (projects/P/datasets/D/tables/T/streams/_default)"
        ))),
    }
}

/// The writer's schema and a batch, each one IPC message, read as the stream they make together.
fn decode(schema: &[u8], batch: &[u8]) -> Result<RecordBatch, Status> {
    let bytes = [schema, batch].concat();
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| Status::invalid_argument(format!("the writer schema is not an Arrow IPC schema: {e}")))?;
    match reader.next() {
        Some(Ok(batch)) => Ok(batch),
        Some(Err(e)) => Err(Status::invalid_argument(format!("the rows are not an Arrow IPC record batch: {e}"))),
        None => Err(Status::invalid_argument("the request carries no Arrow record batch")),
    }
}

/// What one connection remembers between its requests.
#[derive(Default)]
struct Connection {
    stream: Option<String>,
    schema: Option<Vec<u8>>,
}

impl WriteService {
    fn append(&self, conn: &mut Connection, request: AppendRowsRequest) -> Result<AppendRowsResponse, Status> {
        if !request.write_stream.is_empty() {
            conn.stream = Some(request.write_stream.clone());
        }
        let stream = conn.stream.clone().ok_or_else(|| {
            Status::invalid_argument("the first AppendRows request of a connection must name its write_stream")
        })?;
        let table_id = table_of(&stream)?;
        if request.offset.is_some() {
            return Err(Status::invalid_argument(format!(
                "offsets are not allowed when appending to the `_default` stream of `{table_id}`"
            )));
        }
        let arrow = match request.rows {
            Some(Rows::ArrowRows(arrow)) => arrow,
            Some(Rows::ProtoRows(_)) => {
                return Err(Status::unimplemented("the fake takes Arrow rows only, not proto rows"));
            }
            None => return Err(Status::invalid_argument("the request carries no rows")),
        };
        if let Some(schema) = arrow.writer_schema {
            conn.schema = Some(schema.serialized_schema);
        }
        let schema = conn
            .schema
            .as_deref()
            .ok_or_else(|| Status::invalid_argument("the first request must carry the Arrow writer_schema"))?;
        let serialized = arrow.rows.map(|r| r.serialized_record_batch).unwrap_or_default();
        let batch = decode(schema, &serialized)?;
        let mut tables = self.tables.tables.lock().expect("tables lock");
        let table = tables
            .get_mut(&table_id)
            .ok_or_else(|| Status::not_found(format!("Not found: Table {table_id} (stream `{stream}`)")))?;
        let rows = table.append(&batch).map_err(|r| Status::new(r.code, r.message))?;
        tracing::debug!(table = table_id, rows, "BigQuery fake: appended");
        Ok(AppendRowsResponse {
            response: Some(Answer::AppendResult(AppendResult { offset: None })),
            row_errors: Vec::new(),
            write_stream: stream,
        })
    }
}

type Answers = Pin<Box<dyn Stream<Item = Result<AppendRowsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl BigQueryWrite for WriteService {
    type AppendRowsStream = Answers;

    async fn append_rows(
        &self,
        request: Request<Streaming<AppendRowsRequest>>,
    ) -> Result<Response<Self::AppendRowsStream>, Status> {
        let tables = self.tables.clone();
        let mut incoming = request.into_inner();
        let answers = async_stream_of(move |tx| async move {
            let service = WriteService { tables };
            let mut conn = Connection::default();
            while let Some(next) = incoming.next().await {
                let answer = next.and_then(|request| service.append(&mut conn, request));
                // BigQuery ends the connection on a request it refuses; the client opens another.
                let failed = answer.is_err();
                if tx.send(answer).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(answers))
    }
}

/// A stream fed by a task through a channel.
fn async_stream_of<F, Fut>(body: F) -> Answers
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<AppendRowsResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
