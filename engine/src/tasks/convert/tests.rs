//! Casting real Bulk-shaped batches: every type, its good spellings, its bad values (each error
//! names column, `Id` and value), rejects, missing and extra columns.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::config::{ConvertConfig, ExtraColumns, TargetFormat};
use super::processor::ConvertProcessor;
use crate::event::{Event, EventData};
use crate::flow::diagnostic::Mark;
use crate::flow::located::Located;
use crate::flow::resource::ResourceRef;
use crate::runtime::processor::{Emitter, Processor, TaskError};
use crate::runtime::token::Token;
use crate::schema::TableSchema;
use crate::schema::cast::{CastError, Caster};

/// A batch as the Bulk API reader makes it: every column text, `None` for a null.
fn bulk(columns: &[(&str, Vec<Option<&str>>)]) -> RecordBatch {
    let fields: Vec<Field> = columns.iter().map(|(n, _)| Field::new(*n, DataType::Utf8, true)).collect();
    let arrays: Vec<ArrayRef> =
        columns.iter().map(|(_, v)| Arc::new(StringArray::from(v.clone())) as ArrayRef).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn schema(json: &str) -> TableSchema {
    TableSchema::from_json(json).unwrap()
}

fn one(ty: &str) -> Caster {
    let s = format!(
        r#"{{"fields": [{{"name": "Id", "type": "string", "nullable": false}}, {{"name": "V", "type": "{ty}"}}]}}"#
    );
    Caster::new(schema(&s), ExtraColumns::Drop)
}

fn ids(n: usize) -> Vec<Option<&'static str>> {
    ["001A", "001B", "001C", "001D", "001E", "001F"][..n].iter().map(|s| Some(*s)).collect()
}

/// Casts `values` as column `V` of type `ty`, expecting every value to be good.
fn cast_ok(ty: &str, values: Vec<Option<&str>>) -> ArrayRef {
    let batch = bulk(&[("Id", ids(values.len())), ("V", values)]);
    let cast = one(ty).cast(&batch).unwrap();
    assert!(cast.errors.is_empty(), "{:?}", cast.errors);
    cast.batch.column(1).clone()
}

/// Casts one bad value between two good ones: the batch fails with an error naming it.
fn assert_bad(ty: &str, good: &str, bad: &str) {
    let batch = bulk(&[("Id", ids(3)), ("V", vec![Some(good), Some(bad), Some(good)])]);
    let cast = one(ty).cast(&batch).unwrap();
    assert_eq!(cast.errors.len(), 1, "{ty}: {bad}");
    let msg = cast.errors[0].to_string();
    assert!(msg.contains("`V`") && msg.contains("`001B`") && msg.contains(&format!("`{bad}`")), "{ty}: {msg}");
    assert!(msg.contains(ty), "{msg}");
    assert_eq!(cast.batch.num_rows(), 2, "the good rows survive");
    assert_eq!(cast.batch.column(0).as_string::<i32>().value(1), "001C");
}

#[test]
fn booleans_are_true_or_false_in_any_case() {
    let a = cast_ok("boolean", vec![Some("true"), Some("FALSE"), Some("True"), Some(""), None]);
    let a = a.as_any().downcast_ref::<BooleanArray>().unwrap();
    assert_eq!(a.iter().collect::<Vec<_>>(), vec![Some(true), Some(false), Some(true), None, None]);
    assert_bad("boolean", "true", "yes");
    assert_bad("boolean", "false", "1");
}

#[test]
fn int64_values_and_bad_ones() {
    let a = cast_ok("int64", vec![Some("0"), Some("-42"), Some("9223372036854775807"), Some("")]);
    let a = a.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(a.iter().collect::<Vec<_>>(), vec![Some(0), Some(-42), Some(i64::MAX), None]);
    assert_bad("int64", "1", "12abc");
    assert_bad("int64", "1", "1.5");
    assert_bad("int64", "1", "9223372036854775808");
}

#[test]
fn float64_values_and_bad_ones() {
    let a = cast_ok("float64", vec![Some("1.5"), Some("-2"), Some("1e3"), Some("")]);
    let a = a.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(a.iter().collect::<Vec<_>>(), vec![Some(1.5), Some(-2.0), Some(1000.0), None]);
    assert_bad("float64", "1.0", "one");
}

#[test]
fn decimals_are_exact_and_overflow_is_an_error() {
    let a = cast_ok("decimal(38,2)", vec![Some("12345678901234567890123.45"), Some("-0.10"), Some("7"), Some("")]);
    let a = a.as_any().downcast_ref::<Decimal128Array>().unwrap();
    // Exact digits: a float round trip would have lost the last ones of the first value.
    assert_eq!(a.value(0), 1_234_567_890_123_456_789_012_345);
    assert_eq!(a.value_as_string(0), "12345678901234567890123.45");
    assert_eq!(a.value(1), -10);
    assert_eq!(a.value(2), 700);
    assert!(a.is_null(3));
    assert_bad("decimal(5,2)", "1.00", "12345.67");
    assert_bad("decimal(5,2)", "1.00", "1.2.3");
}

#[test]
fn dates_are_iso_days() {
    let a = cast_ok("date", vec![Some("2024-01-01"), Some("1970-01-02"), Some("4000-12-31"), Some("")]);
    let a = a.as_any().downcast_ref::<Date32Array>().unwrap();
    assert_eq!(a.value_as_date(0).unwrap().to_string(), "2024-01-01");
    assert_eq!(a.value(1), 1);
    assert_eq!(a.value_as_date(2).unwrap().to_string(), "4000-12-31");
    assert!(a.is_null(3));
    assert_bad("date", "2024-01-01", "2024-13-01");
    assert_bad("date", "2024-01-01", "yesterday");
}

#[test]
fn timestamps_in_every_salesforce_spelling_become_utc_millis() {
    let a = cast_ok(
        "timestamp",
        vec![
            Some("2024-01-01T00:00:00.000Z"),
            Some("2024-01-01T00:00:00Z"),
            Some("2024-01-01T02:00:00.000+02:00"),
            Some("2024-01-01T00:00:00.123+0000"),
            Some("4000-12-31T00:00:00.000Z"),
            Some(""),
        ],
    );
    let a = a.as_any().downcast_ref::<TimestampMillisecondArray>().unwrap();
    assert_eq!(a.data_type(), &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, Some("UTC".into())));
    let jan1 = 1_704_067_200_000;
    assert_eq!(&a.values()[..4], &[jan1, jan1, jan1, jan1 + 123]);
    assert_eq!(a.value_as_datetime(4).unwrap().to_string(), "4000-12-31 00:00:00");
    assert!(a.is_null(5));
    assert_bad("timestamp", "2024-01-01T00:00:00.000Z", "2024-01-01T25:00:00.000Z");
    assert_bad("timestamp", "2024-01-01T00:00:00.000Z", "not a time");
}

#[test]
fn strings_keep_their_text_and_empty_is_null() {
    let a = cast_ok("string", vec![Some("Acme, Inc."), Some(""), None, Some(" ")]);
    let a = a.as_string::<i32>();
    assert_eq!(a.iter().collect::<Vec<_>>(), vec![Some("Acme, Inc."), None, None, Some(" ")]);
}

#[test]
fn an_empty_value_in_a_non_nullable_column_is_an_error_naming_the_row() {
    let c = Caster::new(
        schema(
            r#"{"fields": [{"name": "Id", "type": "string", "nullable": false}, {"name": "N", "type": "int64", "nullable": false}]}"#,
        ),
        ExtraColumns::Drop,
    );
    let cast = c.cast(&bulk(&[("Id", vec![Some("001A"), Some("")]), ("N", vec![Some(""), Some("2")])])).unwrap();
    let msgs: Vec<String> = cast.errors.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].contains("column `N`, record Id `001A`") && msgs[0].contains("not nullable"), "{}", msgs[0]);
    assert!(msgs[1].contains("column `Id`, row 1 (no Id)"), "{}", msgs[1]);
    assert_eq!(cast.batch.num_rows(), 0);
}

#[test]
fn missing_columns_become_nulls_and_extra_columns_follow_the_setting() {
    let s = schema(
        r#"{"fields": [{"name": "Id", "type": "string", "nullable": false}, {"name": "Rating", "type": "string"}, {"name": "N", "type": "int64"}]}"#,
    );
    let batch = bulk(&[("ID", vec![Some("001A")]), ("Owner.Name", vec![Some("x")]), ("N", vec![Some("3")])]);
    let cast = Caster::new(s.clone(), ExtraColumns::Drop).cast(&batch).unwrap();
    assert_eq!(cast.dropped, vec!["Owner.Name".to_string()]);
    assert_eq!(cast.batch.schema(), s.arrow_schema());
    assert!(cast.batch.column(1).is_null(0));
    assert_eq!(cast.batch.column(0).as_string::<i32>().value(0), "001A", "`ID` matched `Id` ignoring case");
    let err = Caster::new(s.clone(), ExtraColumns::Error).cast(&batch).unwrap_err();
    assert!(matches!(&err, CastError::ExtraColumns { columns } if columns == &["Owner.Name"]), "{err}");

    let without_id = bulk(&[("N", vec![Some("3")])]);
    let err = Caster::new(s, ExtraColumns::Drop).cast(&without_id).unwrap_err();
    assert!(err.to_string().contains("column `Id` is missing"), "{err}");
}

fn config(rejects: Option<String>) -> ConvertConfig {
    ConvertConfig {
        target_format: TargetFormat::Arrow,
        schema: Located {
            mark: Mark { line: 1, column: 1 },
            path: "schema".into(),
            value: ResourceRef { resource: "s.json".into() },
        },
        extra_columns: ExtraColumns::Drop,
        rejects,
    }
}

async fn run(p: &ConvertProcessor, event: Event) -> (Result<(), TaskError>, Vec<Event>) {
    let (tx, mut rx) = mpsc::channel(4);
    let mut out = Emitter::new(vec![tx], Token::new(|_| {}));
    let result = p.process(event, &mut out).await;
    drop(out);
    let mut seen = Vec::new();
    while let Some(env) = rx.recv().await {
        env.token.complete();
        seen.push(env.event);
    }
    (result, seen)
}

fn account_event() -> Event {
    let batch = bulk(&[
        ("Id", vec![Some("001A"), Some("001B"), Some("001C")]),
        ("AnnualRevenue", vec![Some("10.5"), Some("lots"), Some("")]),
        ("LastModifiedDate", vec![Some("2026-11-25T08:59:00.000Z"), Some("2026-11-25T09:00:00.000Z"), Some("bad")]),
    ]);
    let mut meta = serde_json::Map::new();
    meta.insert("run_id".into(), json!("q@2026-11-25T09:05:00Z"));
    meta.insert("job_id".into(), json!("750A"));
    Event {
        id: "750A-p0-b0".into(),
        subject: Some("s".into()),
        data: EventData::Arrow(batch),
        meta,
        created_at: chrono::Utc::now(),
    }
}

const ACCOUNT: &str = r#"{"fields": [
  {"name": "Id", "type": "string", "nullable": false},
  {"name": "AnnualRevenue", "type": "float64"},
  {"name": "LastModifiedDate", "type": "timestamp"}]}"#;

#[tokio::test]
async fn a_bad_value_fails_only_its_batch_with_column_id_and_value() {
    let p = ConvertProcessor::new("f", "cast", &config(None), schema(ACCOUNT));
    let (result, out) = run(&p, account_event()).await;
    let Err(TaskError::Fatal(msg)) = result else { panic!("{result:?}") };
    assert!(msg.contains("batch `750A-p0-b0`"), "{msg}");
    assert!(msg.contains("column `AnnualRevenue`, record Id `001B`: cannot cast `lots` to float64"), "{msg}");
    assert!(msg.contains("and 1 more"), "{msg}");
    assert!(out.is_empty());
}

#[tokio::test]
async fn rejects_take_the_bad_rows_and_the_good_ones_go_on_with_id_and_meta() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects");
    let p = ConvertProcessor::new("f", "cast", &config(Some(rejects.display().to_string())), schema(ACCOUNT));
    let input = account_event();
    for _ in 0..2 {
        // Twice, as a redelivery would: the rejects file is replaced, not appended to.
        let (result, out) = run(&p, input.clone()).await;
        result.unwrap();
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!((e.id.as_str(), e.subject.as_deref(), &e.meta), ("750A-p0-b0", Some("s"), &input.meta));
        let EventData::Arrow(b) = &e.data else { panic!() };
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.column(0).as_string::<i32>().value(0), "001A");
    }
    let files: Vec<_> = std::fs::read_dir(&rejects).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec![std::ffi::OsString::from("750A-p0-b0.jsonl")]);
    let text = std::fs::read_to_string(rejects.join("750A-p0-b0.jsonl")).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["Id"], json!("001B"));
    assert_eq!(lines[0]["errors"][0]["value"], json!("lots"));
    assert_eq!(lines[0]["record"]["LastModifiedDate"], json!("2026-11-25T09:00:00.000Z"));
    assert_eq!(lines[1]["Id"], json!("001C"));
    assert_eq!(lines[1]["errors"][0]["column"], json!("LastModifiedDate"));
}

#[tokio::test]
async fn a_json_event_is_refused_not_guessed() {
    let p = ConvertProcessor::new("f", "cast", &config(None), schema(ACCOUNT));
    let (result, _) = run(&p, Event::json("e", json!({}))).await;
    assert!(matches!(result, Err(TaskError::Fatal(m)) if m.contains("not an Arrow batch")));
}
