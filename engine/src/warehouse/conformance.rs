//! What every [`Warehouse`] must do, written once and run against each implementation with
//! [`conformance_tests!`]. A fixture provides a fresh, empty table with [`schema`] and a way to
//! read it back the way a person would (SQL for PostgreSQL, `tabledata.list` for BigQuery).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};

use super::{ChangeType, Warehouse, WarehouseError};
use crate::runtime::processor::BoxFuture;
use crate::schema::TableSchema;

pub(crate) trait Fixture: Send + Sync {
    fn warehouse(&self) -> Arc<dyn Warehouse>;
    /// `Id` → `Name` of every row in the table.
    fn rows(&self) -> BoxFuture<'_, BTreeMap<String, Option<String>>>;
    /// The table's name as the warehouse's errors spell it (`salesforce.account`, `p.d.t`).
    fn table(&self) -> String;
}

/// The table every fixture creates: one column of each schema type.
pub(crate) fn schema() -> TableSchema {
    TableSchema::from_json(
        r#"{"fields": [
            {"name": "Id", "type": "string", "nullable": false},
            {"name": "Name", "type": "string"},
            {"name": "AnnualRevenue", "type": "float64"},
            {"name": "Amount__c", "type": "decimal(18,2)"},
            {"name": "NumberOfEmployees", "type": "int64"},
            {"name": "IsActive__c", "type": "boolean"},
            {"name": "Founded__c", "type": "date"},
            {"name": "LastModifiedDate", "type": "timestamp"},
            {"name": "IsDeleted", "type": "boolean"}
        ]}"#,
    )
    .expect("the conformance schema parses")
}

/// A batch in the table's types, as `convert` hands it on: one row per `(id, name)`.
pub(crate) fn batch(rows: &[(&str, &str)]) -> RecordBatch {
    let marked: Vec<(&str, &str, bool)> = rows.iter().map(|&(id, name)| (id, name, false)).collect();
    marked_batch(&marked)
}

/// A batch whose rows carry `IsDeleted` as given: `(id, name, is_deleted)`.
pub(crate) fn marked_batch(rows: &[(&str, &str, bool)]) -> RecordBatch {
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Float64Array::from_iter((0..n).map(|i| (i % 2 == 0).then_some(1234.5 * i as f64)))),
        Arc::new(
            Decimal128Array::from_iter((0..n).map(|i| Some(100_050 + i as i128)))
                .with_precision_and_scale(18, 2)
                .expect("decimal(18,2)"),
        ),
        Arc::new(Int64Array::from_iter_values((0..n).map(|i| 10 * i as i64))),
        Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 3 == 0)))),
        Arc::new(Date32Array::from_iter_values((0..n).map(|i| 20_000 + i as i32))),
        Arc::new(
            TimestampMillisecondArray::from_iter_values((0..n).map(|i| 1_764_061_500_000 + i as i64))
                .with_timezone("UTC"),
        ),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.2)))),
    ];
    RecordBatch::try_new(schema().arrow_schema(), columns).expect("a batch in the conformance schema")
}

fn expect_rows(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
    pairs.iter().map(|(id, name)| (id.to_string(), Some(name.to_string()))).collect()
}

async fn apply(f: &dyn Fixture, batch: &RecordBatch, change: ChangeType) {
    f.warehouse().apply(batch, change).await.unwrap_or_else(|e| panic!("applying a good batch: {e}"));
}

pub(crate) async fn the_same_batch_twice_leaves_one_row_per_id(f: &dyn Fixture) {
    let b = batch(&[("001A", "Acme"), ("001B", "Globex"), ("001C", "Initech")]);
    apply(f, &b, ChangeType::Upsert).await;
    apply(f, &b, ChangeType::Upsert).await;
    assert_eq!(f.rows().await, expect_rows(&[("001A", "Acme"), ("001B", "Globex"), ("001C", "Initech")]));
}

pub(crate) async fn a_changed_record_is_updated(f: &dyn Fixture) {
    apply(f, &batch(&[("001A", "Acme"), ("001B", "Globex")]), ChangeType::Upsert).await;
    apply(f, &batch(&[("001B", "Globex Corporation"), ("001C", "Initech")]), ChangeType::Upsert).await;
    assert_eq!(f.rows().await, expect_rows(&[("001A", "Acme"), ("001B", "Globex Corporation"), ("001C", "Initech")]));
}

pub(crate) async fn delete_removes_the_batch_ids_and_is_idempotent(f: &dyn Fixture) {
    apply(f, &batch(&[("001A", "Acme"), ("001B", "Globex"), ("001C", "Initech")]), ChangeType::Upsert).await;
    let gone = batch(&[("001A", "Acme"), ("001C", "whatever the name"), ("001Z", "never there")]);
    apply(f, &gone, ChangeType::Delete).await;
    apply(f, &gone, ChangeType::Delete).await;
    assert_eq!(f.rows().await, expect_rows(&[("001B", "Globex")]));
}

pub(crate) async fn an_empty_batch_changes_nothing(f: &dyn Fixture) {
    apply(f, &batch(&[("001A", "Acme")]), ChangeType::Upsert).await;
    apply(f, &batch(&[]), ChangeType::Upsert).await;
    apply(f, &batch(&[]), ChangeType::Delete).await;
    assert_eq!(f.rows().await, expect_rows(&[("001A", "Acme")]));
}

/// `auto` follows Salesforce: rows marked `IsDeleted` go, the others are upserted, in one go; a
/// delete and an undelete of one `Id` in one batch end as its last row says; applying the batch
/// again changes nothing; a batch without `IsDeleted` is upserted.
pub(crate) async fn auto_deletes_the_rows_marked_deleted_and_upserts_the_rest(f: &dyn Fixture) {
    apply(
        f,
        &batch(&[("001A", "Acme"), ("001B", "Globex"), ("001C", "Initech"), ("001E", "Umbrella")]),
        ChangeType::Upsert,
    )
    .await;
    let changes = marked_batch(&[
        ("001A", "Acme", true),
        ("001B", "Globex Corporation", false),
        ("001D", "Hooli", false),
        ("001Z", "never there", true),
        ("001C", "Initech", false),
        ("001C", "Initech", true),
        ("001E", "Umbrella", true),
        ("001E", "Umbrella again", false),
    ]);
    apply(f, &changes, ChangeType::Auto).await;
    let expected = expect_rows(&[("001B", "Globex Corporation"), ("001D", "Hooli"), ("001E", "Umbrella again")]);
    assert_eq!(f.rows().await, expected);
    apply(f, &changes, ChangeType::Auto).await;
    assert_eq!(f.rows().await, expected, "applying it again changes nothing");
    let without_flag = batch(&[("001F", "Stark")]);
    let without_flag = without_flag.project(&(0..without_flag.num_columns() - 1).collect::<Vec<_>>()).unwrap();
    apply(f, &without_flag, ChangeType::Auto).await;
    assert_eq!(f.rows().await.get("001F"), Some(&Some("Stark".to_string())));
}

/// A batch naming one `Id` twice ends with its last row, as applying the rows in turn would.
pub(crate) async fn the_last_row_of_an_id_in_one_batch_wins(f: &dyn Fixture) {
    apply(f, &batch(&[("001A", "first"), ("001B", "Globex"), ("001A", "last")]), ChangeType::Upsert).await;
    assert_eq!(f.rows().await, expect_rows(&[("001A", "last"), ("001B", "Globex")]));
}

/// Nulls in nullable columns land as nulls (Salesforce leaves most fields empty).
pub(crate) async fn nulls_are_written(f: &dyn Fixture) {
    let good = batch(&[("001A", "Acme")]);
    let columns: Vec<ArrayRef> = good
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| if i == 0 { c.clone() } else { arrow::array::new_null_array(c.data_type(), 1) })
        .collect();
    let nulls = RecordBatch::try_new(good.schema(), columns).unwrap();
    apply(f, &nulls, ChangeType::Upsert).await;
    assert_eq!(f.rows().await, BTreeMap::from([("001A".to_string(), None)]));
}

fn assert_schema_error(f: &dyn Fixture, result: Result<(), WarehouseError>, column: &str) {
    let err = result.expect_err("a batch that does not fit the table is refused");
    assert!(!err.is_retryable(), "retrying cannot fix a schema mismatch: {err}");
    let text = err.to_string();
    assert!(text.contains(&f.table()), "the error names the table `{}`: {text}", f.table());
    assert!(text.contains(column), "the error names the column `{column}`: {text}");
}

pub(crate) async fn a_schema_mismatch_names_the_table_and_the_column(f: &dyn Fixture) {
    let good = batch(&[("001A", "Acme")]);
    // A column the table does not have.
    let mut fields: Vec<Field> = good.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("Rating__c", DataType::Utf8, true));
    let mut columns = good.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec!["Hot"])));
    let extra = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    assert_schema_error(f, f.warehouse().apply(&extra, ChangeType::Upsert).await, "Rating__c");

    // A column of the wrong type: NumberOfEmployees as text.
    let mut fields: Vec<Field> = good.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns = good.columns().to_vec();
    let i = fields.iter().position(|f| f.name() == "NumberOfEmployees").unwrap();
    fields[i] = Field::new("NumberOfEmployees", DataType::Utf8, true);
    columns[i] = Arc::new(StringArray::from(vec!["many"]));
    let wrong = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    assert_schema_error(f, f.warehouse().apply(&wrong, ChangeType::Upsert).await, "NumberOfEmployees");

    // No `Id` at all.
    let no_id = good.project(&[1, 2]).unwrap();
    assert_schema_error(f, f.warehouse().apply(&no_id, ChangeType::Upsert).await, "Id");
    assert!(f.rows().await.is_empty(), "nothing of a refused batch lands");
}

/// One `#[tokio::test]` per conformance case, each with a fresh fixture from `$make` (an async
/// expression).
macro_rules! conformance_tests {
    ($make:expr) => {
        conformance_tests!(@cases $make;
            the_same_batch_twice_leaves_one_row_per_id,
            a_changed_record_is_updated,
            delete_removes_the_batch_ids_and_is_idempotent,
            an_empty_batch_changes_nothing,
            the_last_row_of_an_id_in_one_batch_wins,
            nulls_are_written,
            a_schema_mismatch_names_the_table_and_the_column,
            auto_deletes_the_rows_marked_deleted_and_upserts_the_rest,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $make.await;
                crate::warehouse::conformance::$case(&fixture).await;
            }
        )*
    };
}
pub(crate) use conformance_tests;
