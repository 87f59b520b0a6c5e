//! Arrow columns as binary `COPY` values. Decimals travel as their exact text and are cast to
//! `numeric` by the upsert (PostgreSQL's binary `numeric` has no Arrow twin worth hand-writing).

use std::pin::Pin;

use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, LargeStringArray, StringArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// The staging column type for an Arrow type the writer takes (see `sql::accepts`).
pub fn stage_type(arrow: &DataType) -> Type {
    match arrow {
        DataType::Boolean => Type::BOOL,
        DataType::Int64 => Type::INT8,
        DataType::Float64 => Type::FLOAT8,
        DataType::Date32 => Type::DATE,
        DataType::Timestamp(..) => Type::TIMESTAMPTZ,
        _ => Type::TEXT,
    }
}

type Value = Box<dyn ToSql + Sync + Send>;

/// One column's value at `row`, typed for its staging column.
fn value(column: &dyn Array, row: usize) -> Value {
    if column.is_null(row) {
        return match column.data_type() {
            DataType::Boolean => Box::new(None::<bool>),
            DataType::Int64 => Box::new(None::<i64>),
            DataType::Float64 => Box::new(None::<f64>),
            DataType::Date32 => Box::new(None::<NaiveDate>),
            DataType::Timestamp(..) => Box::new(None::<DateTime<Utc>>),
            _ => Box::new(None::<String>),
        };
    }
    let any = column.as_any();
    match column.data_type() {
        DataType::Boolean => Box::new(any.downcast_ref::<BooleanArray>().map(|a| a.value(row))),
        DataType::Int64 => Box::new(any.downcast_ref::<Int64Array>().map(|a| a.value(row))),
        DataType::Float64 => Box::new(any.downcast_ref::<Float64Array>().map(|a| a.value(row))),
        DataType::Decimal128(..) => Box::new(any.downcast_ref::<Decimal128Array>().map(|a| a.value_as_string(row))),
        DataType::Date32 => Box::new(
            any.downcast_ref::<Date32Array>()
                // Days since 1970-01-01; chrono counts from 0001-01-01 (day 1), 719,163 days earlier.
                .and_then(|a| NaiveDate::from_num_days_from_ce_opt(a.value(row) + 719_163)),
        ),
        DataType::Timestamp(unit, _) => {
            let micros = |v: i64| match unit {
                TimeUnit::Second => v.saturating_mul(1_000_000),
                TimeUnit::Millisecond => v.saturating_mul(1_000),
                TimeUnit::Microsecond => v,
                TimeUnit::Nanosecond => v / 1_000,
            };
            let v = match unit {
                TimeUnit::Second => column.as_primitive::<arrow::datatypes::TimestampSecondType>().value(row),
                TimeUnit::Millisecond => column.as_primitive::<arrow::datatypes::TimestampMillisecondType>().value(row),
                TimeUnit::Microsecond => column.as_primitive::<arrow::datatypes::TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => column.as_primitive::<arrow::datatypes::TimestampNanosecondType>().value(row),
            };
            Box::new(DateTime::<Utc>::from_timestamp_micros(micros(v)))
        }
        DataType::LargeUtf8 => Box::new(any.downcast_ref::<LargeStringArray>().map(|a| a.value(row).to_string())),
        _ => Box::new(any.downcast_ref::<StringArray>().map(|a| a.value(row).to_string())),
    }
}

/// Writes every row of `columns` (all of one length) and finishes the `COPY`; returns the rows
/// PostgreSQL took.
pub async fn write_rows(
    mut writer: Pin<&mut BinaryCopyInWriter>,
    columns: &[&dyn Array],
) -> Result<u64, tokio_postgres::Error> {
    let rows = columns.first().map_or(0, |c| c.len());
    for row in 0..rows {
        let values: Vec<Value> = columns.iter().map(|c| value(*c, row)).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await
}
