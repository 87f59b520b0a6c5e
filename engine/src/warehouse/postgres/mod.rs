//! The PostgreSQL warehouse: each batch is one transaction that binary-`COPY`s the rows into a
//! temporary table and then applies them (`INSERT ... ON CONFLICT ("Id") DO UPDATE` for the
//! upserted rows, `DELETE ... USING`, or an `UPDATE` of `_deleted` with `deletes: soft`, for the
//! deleted ones), so a batch lands whole or not at all and landing it again changes nothing. A
//! dropped connection is reopened and the batch tried again.

mod copy;
pub mod sql;
#[cfg(test)]
mod tests;
pub mod tls;

use std::time::{Duration, Instant};

use arrow::array::{Array, BooleanArray, RecordBatch};
use tokio::sync::Mutex;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, NoTls};

use self::sql::{TableName, ident};
use super::sweep::{self, SweepOutcome, SweepPart};
use super::{ChangeType, DELETED, DELETED_AT, DeleteMode, ID, IS_DELETED, Warehouse, WarehouseError};
use crate::runtime::processor::BoxFuture;
use crate::schema::TableSchema;
use crate::tls::Trust;

/// How long a batch keeps trying to reach a server that went away (a restart, a failover) before
/// the task's own retry takes over.
const RECONNECT_FOR: Duration = Duration::from_secs(30);
const STAGE: &str = "bulkflow_stage";
const ROW: &str = "bulkflow_row";
/// The staging table's flag for a row that is a delete.
const DEL: &str = "bulkflow_delete";

pub struct PostgresWarehouse {
    /// May hold a password: never logged, never part of an error.
    url: String,
    table: TableName,
    /// Set for `create_table: true`: the table is created from it before the first batch.
    create: Option<TableSchema>,
    client: Mutex<Option<Client>>,
    reconnect_for: Duration,
    deletes: DeleteMode,
    trust: Trust,
}

impl PostgresWarehouse {
    pub fn new(url: String, table: TableName, create: Option<TableSchema>) -> Self {
        Self {
            url,
            table,
            create,
            client: Mutex::new(None),
            reconnect_for: RECONNECT_FOR,
            deletes: DeleteMode::Hard,
            trust: Trust::default(),
        }
    }

    /// The roots a TLS connection (any `sslmode` but `disable`) trusts besides `sslrootcert`'s.
    pub fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// What a delete does: remove the row, or mark it (`_deleted`, `_deleted_at`).
    pub fn with_deletes(mut self, deletes: DeleteMode) -> Self {
        self.deletes = deletes;
        self
    }

    pub fn table(&self) -> &TableName {
        &self.table
    }

    fn unavailable(&self, e: &tokio_postgres::Error) -> WarehouseError {
        WarehouseError::Unavailable { table: self.table.to_string(), message: describe(e) }
    }

    fn rejected(&self, message: String) -> WarehouseError {
        WarehouseError::Rejected { table: self.table.to_string(), message }
    }

    async fn connect(&self) -> Result<Client, WarehouseError> {
        let prepared = tls::prepare(&self.url, &self.trust).map_err(|m| self.rejected(m))?;
        if prepared.plain_over_network {
            tracing::warn!(
                table = %self.table,
                "sslmode=disable: this PostgreSQL connection crosses the network without TLS (rows and the password in the clear)"
            );
        }
        // The URL's password must not leak: the driver's connect errors do not quote the URL.
        let connect_err = |e: tokio_postgres::Error| WarehouseError::Unavailable {
            table: self.table.to_string(),
            message: format!("connecting: {}", describe(&e)),
        };
        let client = match prepared.tls {
            None => {
                let (client, connection) = tokio_postgres::connect(&prepared.url, NoTls).await.map_err(connect_err)?;
                tokio::spawn(drive(connection));
                client
            }
            Some(config) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
                let (client, connection) = tokio_postgres::connect(&prepared.url, tls).await.map_err(connect_err)?;
                tokio::spawn(drive(connection));
                client
            }
        };
        if let Some(schema) = &self.create {
            let mut ddl = sql::create_table(&self.table, schema).map_err(|m| self.rejected(m))?;
            if self.deletes == DeleteMode::Soft {
                // Also for a table created before soft deletes were turned on.
                ddl.push_str(&format!(
                    ";\nALTER TABLE {} ADD COLUMN IF NOT EXISTS {} boolean NOT NULL DEFAULT false, \
                     ADD COLUMN IF NOT EXISTS {} timestamp with time zone",
                    self.table.sql(),
                    ident(DELETED),
                    ident(DELETED_AT)
                ));
            }
            // Writers creating the same schema or table at once: the loser sees a duplicate, and
            // its whole DDL batch (one implicit transaction) is undone, the table with it. Once
            // more, the schema exists and `IF NOT EXISTS` holds.
            let mut attempt = 0;
            while let Err(e) = client.batch_execute(&ddl).await {
                attempt += 1;
                if attempt >= 3 || !matches!(e.code().map(|c| c.code()), Some("23505" | "42P06" | "42P07")) {
                    return Err(self.classify(&e, "creating the table"));
                }
            }
        }
        Ok(client)
    }

    fn classify(&self, e: &tokio_postgres::Error, doing: &str) -> WarehouseError {
        if is_transient(e) { self.unavailable(e) } else { self.rejected(format!("{doing}: {}", describe(e))) }
    }

    /// The table's columns and their `information_schema` types; empty when it does not exist.
    async fn columns(
        &self,
        client: &impl tokio_postgres::GenericClient,
    ) -> Result<Vec<(String, String)>, WarehouseError> {
        let rows = client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = COALESCE($1::text, current_schema()) AND table_name = $2 \
                 ORDER BY ordinal_position",
                &[&self.table.schema, &self.table.table],
            )
            .await
            .map_err(|e| self.classify(&e, "reading the table's columns"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The table exists and, with `deletes: soft`, has the columns a soft delete sets: what both
    /// a batch and a sweep need before they touch it.
    fn check_table(&self, table_columns: &[(String, String)]) -> Result<(), WarehouseError> {
        if table_columns.is_empty() {
            return Err(self.rejected(
                "the table does not exist (create it, or set `create_table: true` with a `schema_resource`)".into(),
            ));
        }
        let has = |column: &str| table_columns.iter().any(|(c, _)| c == column);
        if self.deletes == DeleteMode::Soft && !(has(DELETED) && has(DELETED_AT)) {
            return Err(self.rejected(format!(
                "`deletes: soft` needs the columns `{DELETED}` (boolean) and `{DELETED_AT}` (timestamp with time \
                 zone); add them, or set `create_table: true`"
            )));
        }
        Ok(())
    }

    /// The batch columns to write, checked against the table: every one must exist with a type
    /// that takes it, and `Id` must be there. A delete writes only `Id`.
    fn plan<'b>(
        &self,
        batch: &'b RecordBatch,
        table_columns: &[(String, String)],
        change: ChangeType,
    ) -> Result<Vec<(String, &'b dyn Array, bool)>, WarehouseError> {
        let schema_error = |column: &str, problem: String| WarehouseError::Schema {
            table: self.table.to_string(),
            column: column.to_string(),
            problem,
        };
        self.check_table(table_columns)?;
        if batch.schema().index_of(ID).is_err() {
            return Err(schema_error(ID, "the batch has no `Id` column to key its rows by".into()));
        }
        let has = |column: &str| table_columns.iter().any(|(c, _)| c == column);
        let mut plan = Vec::new();
        for (i, field) in batch.schema().fields().iter().enumerate() {
            let name = field.name();
            if change == ChangeType::Delete && name != ID {
                continue;
            }
            // Read to tell deletes from upserts; written only where the table keeps it.
            if change == ChangeType::Auto && name == IS_DELETED && !has(IS_DELETED) {
                continue;
            }
            let Some((_, pg_type)) = table_columns.iter().find(|(c, _)| c == name) else {
                return Err(schema_error(name, "the batch has this column and the table does not".into()));
            };
            let Some(accepted) = sql::accepts(field.data_type()) else {
                return Err(schema_error(name, format!("the batch's type {} cannot be written", field.data_type())));
            };
            if !accepted.contains(&pg_type.as_str()) {
                return Err(schema_error(
                    name,
                    format!("the table has it as `{pg_type}`, the batch as {}", field.data_type()),
                ));
            }
            let is_decimal = matches!(field.data_type(), arrow::datatypes::DataType::Decimal128(..));
            plan.push((name.clone(), batch.column(i).as_ref(), is_decimal));
        }
        Ok(plan)
    }

    async fn apply_once(
        &self,
        client: &mut Client,
        batch: &RecordBatch,
        change: ChangeType,
    ) -> Result<u64, WarehouseError> {
        let deleted = super::deleted_rows(batch, change).map_err(|problem| WarehouseError::Schema {
            table: self.table.to_string(),
            column: IS_DELETED.into(),
            problem,
        })?;
        let tx = client.transaction().await.map_err(|e| self.classify(&e, "starting a transaction"))?;
        let table_columns = self.columns(&tx).await?;
        let plan = self.plan(batch, &table_columns, change)?;
        let flags = BooleanArray::from(deleted.clone().unwrap_or_else(|| vec![false; batch.num_rows()]));
        let mut arrays: Vec<&dyn Array> = plan.iter().map(|(_, c, _)| *c).collect();
        arrays.push(&flags);
        let types: Vec<_> = arrays.iter().map(|c| copy::stage_type(c.data_type())).collect();
        let names: Vec<String> = plan.iter().map(|(n, ..)| ident(n)).collect();
        let mut staged = names.clone();
        staged.push(DEL.to_string());
        let stage_columns: Vec<String> =
            staged.iter().zip(&types).map(|(name, ty)| format!("{name} {}", ty.name())).collect();
        // `bulkflow_row` numbers the rows in batch order (COPY fills it from its default), so a
        // batch naming one `Id` twice applies its last row, as applying the rows in turn would.
        tx.batch_execute(&format!(
            "CREATE TEMPORARY TABLE {STAGE} ({}, {ROW} bigserial) ON COMMIT DROP",
            stage_columns.join(", ")
        ))
        .await
        .map_err(|e| self.classify(&e, "creating the staging table"))?;
        let sink = tx
            .copy_in(&format!("COPY {STAGE} ({}) FROM STDIN (FORMAT binary)", staged.join(", ")))
            .await
            .map_err(|e| self.classify(&e, "starting the COPY"))?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        copy::write_rows(std::pin::pin!(writer), &arrays).await.map_err(|e| self.classify(&e, "copying the rows"))?;
        let table = self.table.sql();
        let id = ident(ID);
        let latest = format!("WITH latest AS (SELECT DISTINCT ON ({id}) * FROM {STAGE} ORDER BY {id}, {ROW} DESC)");
        let soft = self.deletes == DeleteMode::Soft;
        let mut statements = Vec::new();
        if deleted.as_ref().is_some_and(|d| d.contains(&true)) {
            statements.push(if soft {
                format!(
                    "{latest} UPDATE {table} t SET {del} = true, {at} = COALESCE(t.{at}, now()) \
                     FROM latest s WHERE t.{id} = s.{id} AND s.{DEL}",
                    del = ident(DELETED),
                    at = ident(DELETED_AT)
                )
            } else {
                format!("{latest} DELETE FROM {table} t USING latest s WHERE t.{id} = s.{id} AND s.{DEL}")
            });
        }
        if change != ChangeType::Delete {
            let mut columns = names.clone();
            let mut select: Vec<String> = plan
                .iter()
                .map(|(n, _, decimal)| if *decimal { format!("{}::numeric", ident(n)) } else { ident(n) })
                .collect();
            let mut updates: Vec<String> =
                plan.iter().filter(|(n, ..)| n != ID).map(|(n, ..)| format!("{0} = EXCLUDED.{0}", ident(n))).collect();
            if soft {
                // An upsert of a soft-deleted `Id` is Salesforce's undelete.
                columns.extend([ident(DELETED), ident(DELETED_AT)]);
                select.extend(["false".to_string(), "NULL".to_string()]);
                updates.extend([format!("{} = false", ident(DELETED)), format!("{} = NULL", ident(DELETED_AT))]);
            }
            let action =
                if updates.is_empty() { "NOTHING".to_string() } else { format!("UPDATE SET {}", updates.join(", ")) };
            statements.push(format!(
                "{latest} INSERT INTO {table} ({}) SELECT {} FROM latest WHERE NOT {DEL} ON CONFLICT ({id}) DO {action}",
                columns.join(", "),
                select.join(", "),
            ));
        }
        let mut changed = 0;
        for statement in &statements {
            changed += tx.execute(statement, &[]).await.map_err(|e| self.classify(&e, "applying the batch"))?;
        }
        tx.commit().await.map_err(|e| self.classify(&e, "committing"))?;
        crate::fault::point("warehouse.postgres_committed");
        Ok(changed)
    }
}

impl PostgresWarehouse {
    /// Runs `txn` on the task's connection, reconnecting and trying again for up to
    /// `reconnect_for` while the server is unavailable.
    async fn run<T: Txn>(&self, txn: T) -> Result<T::Out, WarehouseError> {
        // One batch at a time per task: the connection is not shared by transactions.
        let mut slot = self.client.lock().await;
        let deadline = Instant::now() + self.reconnect_for;
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = async {
                if slot.as_ref().is_none_or(Client::is_closed) {
                    *slot = Some(self.connect().await?);
                }
                txn.once(self, slot.as_mut().expect("connected above")).await
            };
            match attempt.await {
                Ok(done) => return Ok(done),
                Err(e) if e.is_retryable() && Instant::now() + backoff < deadline => {
                    tracing::warn!(table = %self.table, error = %e, "PostgreSQL unavailable; reconnecting");
                    *slot = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    if e.is_retryable() {
                        *slot = None;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Keeps `part`'s `Id`s in `bulkflow_sweep_ids` and the part in `bulkflow_sweep_parts` (both
    /// beside the table, created on first use); with every part in, removes or marks the rows no
    /// part names, records the sweep in `bulkflow_sweeps` and forgets its `Id`s. A lock per table
    /// makes the parts of one sweep take turns, so exactly one of them sees the set complete.
    async fn sweep_once(
        &self,
        client: &mut Client,
        batch: &RecordBatch,
        part: &SweepPart,
    ) -> Result<SweepOutcome, WarehouseError> {
        let ids = sweep::ids(batch).map_err(|problem| WarehouseError::Schema {
            table: self.table.to_string(),
            column: ID.into(),
            problem,
        })?;
        let tx = client.transaction().await.map_err(|e| self.classify(&e, "starting a transaction"))?;
        let table_columns = self.columns(&tx).await?;
        self.check_table(&table_columns)?;
        let soft = self.deletes == DeleteMode::Soft;
        let side = |name: &str| TableName { schema: self.table.schema.clone(), table: name.into() }.sql();
        let (ids_table, parts_table, sweeps_table) =
            (side("bulkflow_sweep_ids"), side("bulkflow_sweep_parts"), side("bulkflow_sweeps"));
        let target = self.table.to_string();
        let sweep = part.sweep.as_str();
        let parts = i64::try_from(part.parts).unwrap_or(i64::MAX);
        let number = i64::try_from(part.part).unwrap_or(i64::MAX);
        let sql_error = |doing: &'static str| move |e: tokio_postgres::Error| self.classify(&e, doing);
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&format!("bulkflow sweep {target}")])
            .await
            .map_err(sql_error("taking the sweep lock"))?;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {ids_table} (target text NOT NULL, sweep text NOT NULL, id text NOT NULL, \
             PRIMARY KEY (target, sweep, id));
             CREATE TABLE IF NOT EXISTS {parts_table} (target text NOT NULL, sweep text NOT NULL, part bigint NOT NULL, \
             parts bigint NOT NULL, PRIMARY KEY (target, sweep, part));
             CREATE TABLE IF NOT EXISTS {sweeps_table} (target text NOT NULL, sweep text NOT NULL, \
             swept_at timestamp with time zone NOT NULL, removed bigint NOT NULL, PRIMARY KEY (target, sweep))"
        ))
        .await
        .map_err(sql_error("creating the sweep tables"))?;
        let done = tx
            .query_opt(&format!("SELECT 1 FROM {sweeps_table} WHERE target = $1 AND sweep = $2"), &[&target, &sweep])
            .await
            .map_err(sql_error("reading the sweeps done"))?;
        if done.is_some() {
            tx.commit().await.map_err(sql_error("committing"))?;
            return Ok(SweepOutcome::AlreadySwept);
        }
        tx.execute(
            &format!(
                "INSERT INTO {ids_table} (target, sweep, id) SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING"
            ),
            &[&target, &sweep, &ids],
        )
        .await
        .map_err(sql_error("keeping the part's Ids"))?;
        tx.execute(
            &format!(
                "INSERT INTO {parts_table} (target, sweep, part, parts) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            ),
            &[&target, &sweep, &number, &parts],
        )
        .await
        .map_err(sql_error("keeping the part"))?;
        let have: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM {parts_table} WHERE target = $1 AND sweep = $2 AND part < $3"),
                &[&target, &sweep, &parts],
            )
            .await
            .map_err(sql_error("counting the parts"))?
            .get(0);
        if have < parts {
            tx.commit().await.map_err(sql_error("committing"))?;
            return Ok(SweepOutcome::Waiting { have: have as u64 });
        }
        let table = self.table.sql();
        let id = ident(ID);
        // Rows changed since the live set was read may be records created since: keep them.
        let changed_since = ["SystemModstamp", "LastModifiedDate"]
            .into_iter()
            .find(|c| table_columns.iter().any(|(name, ty)| name == c && ty.starts_with("timestamp")))
            .map(|c| format!(" AND (t.{0} IS NULL OR t.{0} < $3)", ident(c)))
            .unwrap_or_default();
        let gone = format!(
            "NOT EXISTS (SELECT 1 FROM {ids_table} l WHERE l.target = $1 AND l.sweep = $2 AND l.id = t.{id}){changed_since}"
        );
        let statement = if soft {
            format!(
                "UPDATE {table} t SET {del} = true, {at} = now() WHERE NOT t.{del} AND {gone}",
                del = ident(DELETED),
                at = ident(DELETED_AT)
            )
        } else {
            format!("DELETE FROM {table} t WHERE {gone}")
        };
        let with_before: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&target, &sweep, &part.before];
        let params = if changed_since.is_empty() { &with_before[..2] } else { &with_before[..] };
        let removed = tx.execute(&statement, params).await.map_err(sql_error("removing the rows no part names"))?;
        tx.execute(
            &format!("INSERT INTO {sweeps_table} (target, sweep, swept_at, removed) VALUES ($1, $2, now(), $3)"),
            &[&target, &sweep, &i64::try_from(removed).unwrap_or(i64::MAX)],
        )
        .await
        .map_err(sql_error("recording the sweep"))?;
        for forget in [ids_table, parts_table] {
            tx.execute(&format!("DELETE FROM {forget} WHERE target = $1 AND sweep = $2"), &[&target, &sweep])
                .await
                .map_err(sql_error("forgetting the sweep's Ids"))?;
        }
        tx.commit().await.map_err(sql_error("committing"))?;
        Ok(SweepOutcome::Swept { removed })
    }
}

/// One transaction's work, which [`PostgresWarehouse::run`] tries again on a new connection.
trait Txn: Sync {
    type Out: Send;
    fn once<'c>(
        &'c self,
        warehouse: &'c PostgresWarehouse,
        client: &'c mut Client,
    ) -> impl Future<Output = Result<Self::Out, WarehouseError>> + Send + 'c;
}

struct ApplyTxn<'b> {
    batch: &'b RecordBatch,
    change: ChangeType,
}

impl Txn for ApplyTxn<'_> {
    type Out = u64;
    fn once<'c>(
        &'c self,
        warehouse: &'c PostgresWarehouse,
        client: &'c mut Client,
    ) -> impl Future<Output = Result<u64, WarehouseError>> + Send + 'c {
        warehouse.apply_once(client, self.batch, self.change)
    }
}

struct SweepTxn<'b> {
    batch: &'b RecordBatch,
    part: &'b SweepPart,
}

impl Txn for SweepTxn<'_> {
    type Out = SweepOutcome;
    fn once<'c>(
        &'c self,
        warehouse: &'c PostgresWarehouse,
        client: &'c mut Client,
    ) -> impl Future<Output = Result<SweepOutcome, WarehouseError>> + Send + 'c {
        warehouse.sweep_once(client, self.batch, self.part)
    }
}

impl Warehouse for PostgresWarehouse {
    fn apply<'a>(&'a self, batch: &'a RecordBatch, change: ChangeType) -> BoxFuture<'a, Result<(), WarehouseError>> {
        Box::pin(async move {
            if batch.num_rows() == 0 {
                return Ok(());
            }
            let rows = self.run(ApplyTxn { batch, change }).await?;
            tracing::debug!(table = %self.table, rows, change = ?change, "applied batch");
            Ok(())
        })
    }

    fn sweep<'a>(
        &'a self,
        batch: &'a RecordBatch,
        part: &'a SweepPart,
    ) -> BoxFuture<'a, Result<SweepOutcome, WarehouseError>> {
        Box::pin(self.run(SweepTxn { batch, part }))
    }
}

/// Connection trouble, a server shutting down or starting, or a conflict between transactions:
/// another attempt may succeed. Errors the server raised about the statement itself will not.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    let Some(code) = e.code() else {
        // No SQLSTATE: the socket, the protocol or the connection closing.
        return true;
    };
    let code = code.code();
    code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") || code == "40001" || code == "40P01"
}

/// The server's message (with its detail) or the driver's, never the connection string.
/// Runs a connection until it closes (its client dropped, or the server gone).
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %describe(&e), "PostgreSQL connection closed");
    }
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail}) [SQLSTATE {}]", db.message(), db.code().code()),
            None => format!("{} [SQLSTATE {}]", db.message(), db.code().code()),
        },
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}
