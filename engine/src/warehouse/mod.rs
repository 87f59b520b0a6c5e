//! Warehouses: tables that take Arrow batches keyed by Salesforce's `Id`. One small trait, one
//! implementation per warehouse, and one conformance suite (`conformance.rs`) they all pass, so
//! the writer tasks can promise the same thing whichever warehouse a flow names: a batch applied
//! twice (a bus redelivery, a retry after a lost acknowledgement) leaves the table as once.

pub mod bigquery;
#[cfg(test)]
pub(crate) mod conformance;
pub mod postgres;
pub mod sweep;

use arrow::array::RecordBatch;
use serde::Deserialize;

use self::sweep::{SweepOutcome, SweepPart};
use crate::runtime::processor::BoxFuture;

/// How a warehouse applies a batch's rows, keyed by `Id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    /// Insert rows whose `Id` is new, replace the rows whose `Id` exists.
    #[default]
    Upsert,
    /// Remove the rows with the batch's `Id`s; the other columns are not looked at.
    Delete,
    /// Follow Salesforce: rows whose `IsDeleted` is true are deleted by `Id`, the others
    /// upserted, all in one transaction or request. A batch without `IsDeleted` is upserted.
    Auto,
}

/// What a delete does to the warehouse's row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteMode {
    /// The row is removed.
    #[default]
    Hard,
    /// The row stays, with [`DELETED`] true and [`DELETED_AT`] when the warehouse learnt it; an
    /// upsert of the same `Id` later (an undelete) sets them back.
    Soft,
}

/// The column every warehouse table is keyed by.
pub const ID: &str = "Id";
/// Salesforce's soft-delete flag, which `ChangeType::Auto` follows.
pub const IS_DELETED: &str = "IsDeleted";
/// The warehouse's own columns for `deletes: soft`.
pub const DELETED: &str = "_deleted";
pub const DELETED_AT: &str = "_deleted_at";

/// Which rows of `batch` are deletes under `change`: `None` when none can be (an upsert, or
/// `Auto` on a batch without `IsDeleted`), else one flag per row. The error says what is wrong
/// with the `IsDeleted` column.
pub fn deleted_rows(batch: &RecordBatch, change: ChangeType) -> Result<Option<Vec<bool>>, String> {
    match change {
        ChangeType::Upsert => Ok(None),
        ChangeType::Delete => Ok(Some(vec![true; batch.num_rows()])),
        ChangeType::Auto => {
            let Ok(i) = batch.schema().index_of(IS_DELETED) else { return Ok(None) };
            let flags = batch
                .column(i)
                .as_any()
                .downcast_ref::<arrow::array::BooleanArray>()
                .ok_or_else(|| format!("is {}, not boolean: cast it in `convert`", batch.column(i).data_type()))?;
            Ok(Some((0..batch.num_rows()).map(|r| arrow::array::Array::is_valid(flags, r) && flags.value(r)).collect()))
        }
    }
}

pub trait Warehouse: Send + Sync {
    /// Applies `batch` as `change`, all of it or none of it. Idempotent: applying the same batch
    /// again leaves the table as it was.
    fn apply<'a>(&'a self, batch: &'a RecordBatch, change: ChangeType) -> BoxFuture<'a, Result<(), WarehouseError>>;

    /// Takes one part of a sweep (see [`sweep`]): keeps its `Id`s and, once every part is in,
    /// removes the rows no part names. Idempotent: a part again changes nothing, and a part of a
    /// sweep already done is ignored.
    fn sweep<'a>(
        &'a self,
        batch: &'a RecordBatch,
        part: &'a SweepPart,
    ) -> BoxFuture<'a, Result<SweepOutcome, WarehouseError>>;
}

/// What a warehouse task does with one event: apply its Arrow batch (or take it as a sweep's
/// part, when its meta says it is one), and say which failures a retry can help. Returns the
/// batch's row count. `task_type` names the task in errors.
pub async fn apply_event(
    warehouse: &dyn Warehouse,
    task_type: &str,
    event: &crate::event::Event,
    change: ChangeType,
) -> Result<usize, crate::runtime::processor::TaskError> {
    use crate::runtime::processor::TaskError;
    let crate::event::EventData::Arrow(batch) = &event.data else {
        return Err(TaskError::Fatal(format!(
            "batch `{}`: not an Arrow batch; {task_type} writes the batches `convert` produces",
            event.id
        )));
    };
    let failed = |e: WarehouseError| {
        let message = format!("batch `{}`: {e}", event.id);
        if e.is_retryable() { TaskError::Retryable(message) } else { TaskError::Fatal(message) }
    };
    if let Some(part) = SweepPart::of(&event.meta) {
        let part = part.map_err(|e| TaskError::Fatal(format!("batch `{}`: {e}", event.id)))?;
        let outcome = warehouse.sweep(batch, &part).await.map_err(failed)?;
        match outcome {
            SweepOutcome::Unsupported => tracing::error!(
                task = task_type,
                sweep = part.sweep,
                "{task_type} cannot reconcile by Id: records deleted in Salesforce before its deleted resource's \
                 window stay in this table"
            ),
            SweepOutcome::Swept { removed } => {
                tracing::info!(
                    task = task_type,
                    sweep = part.sweep,
                    parts = part.parts,
                    removed,
                    "swept the table by its live Ids"
                )
            }
            other => {
                tracing::debug!(task = task_type, sweep = part.sweep, part = part.part, ?other, "took a sweep part")
            }
        }
        return Ok(batch.num_rows());
    }
    warehouse.apply(batch, change).await.map_err(failed)?;
    Ok(batch.num_rows())
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The batch does not fit the table: retrying cannot help.
    #[error("table `{table}`, column `{column}`: {problem}")]
    Schema { table: String, column: String, problem: String },
    /// The warehouse refused the batch or the table is unusable (missing, no key on `Id`).
    #[error("table `{table}`: {message}")]
    Rejected { table: String, message: String },
    /// The warehouse could not be reached or dropped the connection: worth another attempt.
    #[error("table `{table}`: {message}")]
    Unavailable { table: String, message: String },
}

impl WarehouseError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}
