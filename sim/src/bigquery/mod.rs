//! A BigQuery fake: the Storage Write API's `AppendRows` (gRPC, Arrow rows, `_CHANGE_TYPE`
//! upserts and deletes by the primary key `Id`) and the REST `tables.get` and `tabledata.list`, on
//! one port (gRPC over HTTP/2, REST over HTTP/1.1 or 2). Like the rest of the simulator it shares
//! no code with the engine's client: its `.proto` is its own subset of googleapis', with the same
//! field numbers.

mod rest;
pub mod table;
mod write;

use bulkflow_bigquery_proto as proto;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;

use self::table::Table;

/// The largest append the fake decodes; BigQuery's own limit is 10 MB per request.
const MAX_MESSAGE: usize = 20 * 1024 * 1024;

/// The tables, by `project.dataset.table`.
#[derive(Default)]
pub struct Tables {
    tables: Mutex<HashMap<String, Table>>,
}

/// A running BigQuery fake.
pub struct BigQuery {
    addr: SocketAddr,
    tables: Arc<Tables>,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("BigQuery table `{id}`: the name is not project.dataset.table")]
    Name { id: String },
    #[error("BigQuery table `{id}`: {problem}")]
    Schema { id: String, problem: String },
}

impl BigQuery {
    /// Serves on `listener` until `shutdown` turns true.
    pub fn start(listener: TcpListener, mut shutdown: watch::Receiver<bool>) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let tables = Arc::new(Tables::default());
        let grpc =
            proto::big_query_write_server::BigQueryWriteServer::new(write::WriteService { tables: tables.clone() })
                .max_decoding_message_size(MAX_MESSAGE);
        let routes = tonic::service::Routes::from(rest::router(tables.clone())).add_service(grpc);
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .accept_http1(true)
                .add_routes(routes)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                    let _ = shutdown.changed().await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "BigQuery fake stopped");
            }
        });
        Ok(Self { addr, tables })
    }

    /// `host:port`: what `BIGQUERY_EMULATOR_HOST` is set to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Creates (or replaces, empty) table `project.dataset.table` from a schema JSON in the
    /// README's format; `Id` is its primary key.
    pub fn create_table(&self, id: &str, schema_json: &str) -> Result<(), TableError> {
        if id.split('.').count() != 3 || id.split('.').any(str::is_empty) {
            return Err(TableError::Name { id: id.to_string() });
        }
        let columns =
            table::parse_schema(schema_json).map_err(|problem| TableError::Schema { id: id.to_string(), problem })?;
        self.tables.tables.lock().expect("tables lock").insert(id.to_string(), Table::new(id, columns));
        Ok(())
    }

    /// The table's rows as `tabledata.list` returns them (cells in column order), or `None`.
    pub fn rows(&self, id: &str) -> Option<Vec<Vec<Value>>> {
        self.tables.tables.lock().expect("tables lock").get(id).map(|t| t.rows.clone())
    }
}
