//! Hive partitions (`EventDate=YYYY-MM-DD/EventHour=HH/`). The value must be the same every time a
//! batch is written, or a redelivery would land in a second directory: so it is the run's
//! scheduled time (from `meta.run_id`), or a record field, never the clock.

use std::collections::BTreeMap;
use std::str::FromStr;

use arrow::array::{Array, AsArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::TimestampMillisecondType;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use super::config::{HivePartitionOptions, PartitionKey};
use crate::event::Event;
use crate::run::RunId;
use crate::schema::utc_millis;

/// Hive's name for the partition of rows whose partition value is null.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

#[derive(Debug, Clone, Default)]
pub struct Partitioner {
    keys: Vec<PartitionKey>,
    field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error(
        "event `{event}` has no usable `meta.run_id` ({why}), so its partition (the run's scheduled time) is unknown; \
         set `hive_partition_options.field` to partition by a record field instead"
    )]
    NoRunId { event: String, why: String },
    #[error("partition field `{field}` is not a column of batch `{event}`")]
    NoField { field: String, event: String },
    #[error("partition field `{field}` of batch `{event}` cannot be read as a time: {source}")]
    BadField {
        field: String,
        event: String,
        #[source]
        source: ArrowError,
    },
}

impl Partitioner {
    /// `None` options, `enabled: false` or no keys: everything goes straight under the prefix.
    pub fn new(options: Option<&HivePartitionOptions>) -> Self {
        match options {
            Some(o) if o.enabled && !o.partition_keys.is_empty() => {
                Self { keys: o.partition_keys.clone(), field: o.field.clone() }
            }
            _ => Self::default(),
        }
    }

    /// The batch split by partition: `(directory, rows)`, the directory relative to the prefix
    /// (`""` when not partitioned). Rows keep their order within a partition.
    pub fn split(&self, event: &Event, batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>, PartitionError> {
        if self.keys.is_empty() {
            return Ok(vec![(String::new(), batch.clone())]);
        }
        let Some(field) = &self.field else {
            let at = scheduled_at(event)?;
            return Ok(vec![(self.directory(Some(at)), batch.clone())]);
        };
        let column = batch
            .column_by_name(field)
            .ok_or_else(|| PartitionError::NoField { field: field.clone(), event: event.id.clone() })?;
        let bad = |source| PartitionError::BadField { field: field.clone(), event: event.id.clone(), source };
        // Dates, timestamps of any unit and zone, and text all become UTC milliseconds.
        let times = utc_millis(column, false).map_err(bad)?;
        let times = times.as_primitive::<TimestampMillisecondType>();
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for row in 0..times.len() {
            let at = times.is_valid(row).then(|| DateTime::from_timestamp_millis(times.value(row))).flatten();
            let row = u32::try_from(row).expect("an Arrow batch has fewer than 2^32 rows");
            groups.entry(self.directory(at)).or_default().push(row);
        }
        if groups.len() == 1 {
            let (dir, _) = groups.pop_first().expect("one group");
            return Ok(vec![(dir, batch.clone())]);
        }
        groups
            .into_iter()
            .map(|(dir, rows)| Ok((dir, take_record_batch(batch, &UInt32Array::from(rows)).map_err(bad)?)))
            .collect()
    }

    fn directory(&self, at: Option<DateTime<Utc>>) -> String {
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|key| {
                let value = match at {
                    None => NULL_PARTITION.to_string(),
                    Some(t) => match key {
                        PartitionKey::EventDate => t.format("%Y-%m-%d").to_string(),
                        PartitionKey::EventHour => t.format("%H").to_string(),
                    },
                };
                format!("{}={value}", key.name())
            })
            .collect();
        parts.join("/")
    }
}

impl PartitionKey {
    pub fn name(self) -> &'static str {
        match self {
            Self::EventDate => "EventDate",
            Self::EventHour => "EventHour",
        }
    }
}

fn scheduled_at(event: &Event) -> Result<DateTime<Utc>, PartitionError> {
    let no = |why: &str| PartitionError::NoRunId { event: event.id.clone(), why: why.to_string() };
    let text = event
        .meta
        .get(crate::event::meta::RUN_ID)
        .ok_or_else(|| no("missing"))?
        .as_str()
        .ok_or_else(|| no("not a string"))?;
    Ok(RunId::from_str(text).map_err(|e| no(&e.to_string()))?.scheduled_at())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use serde_json::json;

    use super::*;

    fn options(keys: Vec<PartitionKey>, field: Option<&str>) -> HivePartitionOptions {
        HivePartitionOptions { enabled: true, partition_keys: keys, field: field.map(String::from) }
    }

    fn batch() -> RecordBatch {
        let ts = TimestampMillisecondArray::from(vec![
            Some(1_764_061_200_000), // 2025-11-25T09:00:00Z
            Some(1_764_000_000_000), // 2025-11-24T16:00:00Z
            None,
            Some(1_764_064_800_000), // 2025-11-25T10:00:00Z
        ])
        .with_timezone("UTC");
        let n: ArrayRef = Arc::new(Int64Array::from(vec![0, 1, 2, 3]));
        let schema =
            Schema::new(vec![Field::new("n", DataType::Int64, false), Field::new("At", ts.data_type().clone(), true)]);
        RecordBatch::try_new(Arc::new(schema), vec![n, Arc::new(ts)]).unwrap()
    }

    fn event(run_id: Option<&str>) -> Event {
        let mut e = Event::json("b1", json!({}));
        if let Some(r) = run_id {
            e.meta.insert("run_id".into(), json!(r));
        }
        e
    }

    #[test]
    fn by_default_the_run_s_scheduled_time_names_the_partition() {
        let p = Partitioner::new(Some(&options(vec![PartitionKey::EventDate, PartitionKey::EventHour], None)));
        let parts = p.split(&event(Some("q@2026-11-25T09:05:00Z")), &batch()).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, "EventDate=2026-11-25/EventHour=09");
        assert_eq!(parts[0].1.num_rows(), 4);
        let err = p.split(&event(None), &batch()).unwrap_err().to_string();
        assert!(err.contains("`b1`") && err.contains("hive_partition_options.field"), "{err}");
        assert!(p.split(&event(Some("not a run")), &batch()).is_err());
    }

    #[test]
    fn a_field_splits_rows_across_partitions_and_nulls_go_to_hive_s_default() {
        let p = Partitioner::new(Some(&options(vec![PartitionKey::EventDate], Some("At"))));
        let parts = p.split(&event(None), &batch()).unwrap();
        let summary: Vec<(String, Vec<i64>)> = parts
            .iter()
            .map(|(d, b)| (d.clone(), b.column(0).as_primitive::<arrow::datatypes::Int64Type>().values().to_vec()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("EventDate=2025-11-24".to_string(), vec![1]),
                ("EventDate=2025-11-25".to_string(), vec![0, 3]),
                (format!("EventDate={NULL_PARTITION}"), vec![2]),
            ]
        );
    }

    #[test]
    fn a_text_field_is_parsed_and_a_missing_one_is_named() {
        let text: ArrayRef = Arc::new(StringArray::from(vec!["2024-01-01T23:30:00.000Z"]));
        let b = RecordBatch::try_from_iter(vec![("LastModifiedDate", text)]).unwrap();
        let p = Partitioner::new(Some(&options(
            vec![PartitionKey::EventDate, PartitionKey::EventHour],
            Some("LastModifiedDate"),
        )));
        assert_eq!(p.split(&event(None), &b).unwrap()[0].0, "EventDate=2024-01-01/EventHour=23");
        let p = Partitioner::new(Some(&options(vec![PartitionKey::EventDate], Some("Nope"))));
        assert!(p.split(&event(None), &b).unwrap_err().to_string().contains("`Nope`"));
    }

    #[test]
    fn disabled_partitioning_writes_under_the_prefix() {
        let mut o = options(vec![PartitionKey::EventDate], None);
        o.enabled = false;
        let parts = Partitioner::new(Some(&o)).split(&event(None), &batch()).unwrap();
        assert_eq!(parts[0].0, "");
    }
}
