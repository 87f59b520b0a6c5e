//! A batch as the Storage Write API takes Arrow rows: the types BigQuery's Arrow reader expects
//! (timestamps in microseconds, `NUMERIC` as decimal(38,9)), a `_CHANGE_TYPE` column saying
//! `UPSERT` or `DELETE` for every row, and the schema and the batch serialized as separate Arrow
//! IPC messages (`ArrowSchema.serialized_schema`, `ArrowRecordBatch.serialized_record_batch`).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::ipc::writer::StreamWriter;

use crate::warehouse::{ChangeType, ID};

/// BigQuery's pseudo-column for change data capture writes.
pub const CHANGE_TYPE: &str = "_CHANGE_TYPE";

/// One append's payload.
pub struct Encoded {
    pub schema: Vec<u8>,
    pub batch: Vec<u8>,
    pub rows: usize,
}

/// A column of the batch that BigQuery cannot take, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Unwritable {
    pub column: String,
    pub problem: String,
}

/// The batch to send for `change`: a delete carries only `Id` (the other columns are not looked
/// at), an upsert every column, each cast to what BigQuery's Arrow reader takes; with `Auto` each
/// row is an `UPSERT` or, when its `IsDeleted` is true, a `DELETE`, in the same request.
pub fn prepare(batch: &RecordBatch, change: ChangeType) -> Result<RecordBatch, Unwritable> {
    let deleted = crate::warehouse::deleted_rows(batch, change)
        .map_err(|problem| Unwritable { column: crate::warehouse::IS_DELETED.into(), problem })?;
    let id = batch.schema().index_of(ID).map_err(|_| Unwritable {
        column: ID.into(),
        problem: "the batch has no `Id` column to key its rows by".into(),
    })?;
    let keep: Vec<usize> = match change {
        ChangeType::Delete => vec![id],
        ChangeType::Upsert | ChangeType::Auto => (0..batch.num_columns()).collect(),
    };
    let mut fields = Vec::with_capacity(keep.len() + 1);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(keep.len() + 1);
    for i in keep {
        let field = batch.schema().field(i).clone();
        if field.name() == CHANGE_TYPE {
            return Err(Unwritable { column: CHANGE_TYPE.into(), problem: "the batch may not carry it itself".into() });
        }
        let target = bigquery_type(field.data_type());
        let column = if &target == field.data_type() {
            batch.column(i).clone()
        } else {
            arrow::compute::cast(batch.column(i), &target)
                .map_err(|e| Unwritable { column: field.name().clone(), problem: e.to_string() })?
        };
        fields.push(Field::new(field.name(), target, field.is_nullable()));
        columns.push(column);
    }
    let labels: StringArray = match deleted {
        Some(flags) => flags.iter().map(|&d| Some(if d { "DELETE" } else { "UPSERT" })).collect(),
        None => StringArray::from_iter_values(std::iter::repeat_n("UPSERT", batch.num_rows())),
    };
    fields.push(Field::new(CHANGE_TYPE, DataType::Utf8, false));
    columns.push(Arc::new(labels));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Unwritable { column: CHANGE_TYPE.into(), problem: e.to_string() })
}

/// What BigQuery's Arrow reader takes for a column of `ty`: `TIMESTAMP` is microseconds in UTC,
/// `NUMERIC` is decimal(38,9) (a smaller decimal that fits is widened, exactly); the rest as is.
fn bigquery_type(ty: &DataType) -> DataType {
    match ty {
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Decimal128(p, s) if *s >= 0 && *s <= 9 && (*p as i16 - *s as i16) <= 29 => {
            DataType::Decimal128(38, 9)
        }
        other => other.clone(),
    }
}

/// The schema and the batch as the two IPC messages an append carries.
pub fn encode(batch: &RecordBatch) -> Result<Encoded, arrow::error::ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    let schema_len = writer.get_ref().len();
    writer.write(batch)?;
    let bytes = writer.get_ref();
    Ok(Encoded { schema: bytes[..schema_len].to_vec(), batch: bytes[schema_len..].to_vec(), rows: batch.num_rows() })
}

/// Splits `batch` into slices whose encoding stays under `limit` bytes (the API refuses requests
/// over 10 MB), estimated from the whole batch's size.
pub fn slices(batch: &RecordBatch, encoded_len: usize, limit: usize) -> Vec<RecordBatch> {
    if encoded_len <= limit || batch.num_rows() <= 1 {
        return vec![batch.clone()];
    }
    let parts = encoded_len.div_ceil(limit) + 1;
    let per = batch.num_rows().div_ceil(parts).max(1);
    (0..batch.num_rows()).step_by(per).map(|start| batch.slice(start, per.min(batch.num_rows() - start))).collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::Array;

    use super::*;
    use crate::warehouse::conformance;

    #[test]
    fn auto_marks_each_row_by_its_is_deleted() {
        let rows = [("001A", "Acme", true), ("001B", "Globex", false)];
        let b = prepare(&conformance::marked_batch(&rows), ChangeType::Auto).unwrap();
        let change = b.column_by_name(CHANGE_TYPE).unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(change.iter().collect::<Vec<_>>(), [Some("DELETE"), Some("UPSERT")]);
    }

    #[test]
    fn an_upsert_carries_every_column_in_bigquery_types_and_a_change_type() {
        let b = prepare(&conformance::batch(&[("001A", "Acme"), ("001B", "Globex")]), ChangeType::Upsert).unwrap();
        let schema = b.schema();
        let types: Vec<(&str, &DataType)> =
            schema.fields().iter().map(|f| (f.name().as_str(), f.data_type())).collect();
        assert_eq!(types[3], ("Amount__c", &DataType::Decimal128(38, 9)));
        assert_eq!(types[7], ("LastModifiedDate", &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))));
        assert_eq!(types[9], (CHANGE_TYPE, &DataType::Utf8));
        let change = b.column(9).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(change.iter().collect::<Vec<_>>(), [Some("UPSERT"), Some("UPSERT")]);
        let ts = b.column(7).as_any().downcast_ref::<arrow::array::TimestampMicrosecondArray>().unwrap();
        assert_eq!(ts.value(0), 1_764_061_500_000_000);
        let amount = b.column(3).as_any().downcast_ref::<arrow::array::Decimal128Array>().unwrap();
        assert_eq!(amount.value_as_string(0), "1000.500000000");
    }

    #[test]
    fn a_delete_carries_only_the_ids() {
        let b = prepare(&conformance::batch(&[("001A", "Acme")]), ChangeType::Delete).unwrap();
        let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, [ID, CHANGE_TYPE]);
        let change = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(change.value(0), "DELETE");
    }

    #[test]
    fn a_batch_without_id_is_refused_naming_the_column() {
        let b = conformance::batch(&[("001A", "Acme")]).project(&[1, 2]).unwrap();
        let err = prepare(&b, ChangeType::Upsert).unwrap_err();
        assert_eq!(err.column, "Id");
    }

    #[test]
    fn the_two_messages_read_back_as_one_stream() {
        let b = prepare(&conformance::batch(&[("001A", "Acme"), ("001B", "Globex")]), ChangeType::Upsert).unwrap();
        let encoded = encode(&b).unwrap();
        let stream = [encoded.schema.as_slice(), encoded.batch.as_slice()].concat();
        let mut reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None).unwrap();
        let back = reader.next().unwrap().unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn large_batches_are_sliced_under_the_limit() {
        let b = conformance::batch(&[("001A", "a"), ("001B", "b"), ("001C", "c"), ("001D", "d"), ("001E", "e")]);
        assert_eq!(slices(&b, 10, 100).len(), 1);
        let parts = slices(&b, 250, 100);
        assert!(parts.len() >= 3, "{}", parts.len());
        assert_eq!(parts.iter().map(|p| p.num_rows()).sum::<usize>(), 5);
    }
}
