//! Reconciling a table by its live `Id`s, for deletes Salesforce no longer reports.
//!
//! Salesforce's `deleted` resource remembers about 15 days. A run whose window starts earlier
//! (an export paused for weeks, or one that only now turned deletes on) cannot learn which records
//! went in between, so it reads every live `Id` instead (a Bulk job on `Id` alone) and sends them
//! as the parts of one sweep. A warehouse keeps each part as it comes; once it holds every part,
//! it removes (or, with `deletes: soft`, marks) each row whose `Id` is in none of them and that
//! did not change after the live set was read. The parts travel as ordinary batches of the run,
//! tagged in their meta, so the run is `written` only once every writer has taken every part.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ID;

/// The meta key a sweep's parts carry their [`SweepPart`] under.
pub const META_KEY: &str = "live_ids";

/// One part of a sweep's live `Id` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepPart {
    /// Names the sweep; every part of it carries the same (the run that reads the live set).
    pub sweep: String,
    /// From 0.
    pub part: u64,
    /// How many parts the sweep has: the table is swept once all of them are in.
    pub parts: u64,
    /// When the live set was read: rows changed at or after it are never swept (a record created
    /// since is live although no part names it).
    pub before: DateTime<Utc>,
}

/// What a warehouse did with one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepOutcome {
    /// Kept; `have` of the sweep's parts are in.
    Waiting { have: u64 },
    /// The last part came: `removed` rows were removed (or marked deleted).
    Swept { removed: u64 },
    /// The sweep was done before this part came again (a redelivery).
    AlreadySwept,
    /// The warehouse cannot sweep; the part was not kept.
    Unsupported,
}

impl SweepPart {
    /// The part `meta` carries, if any; an error says what is wrong with a malformed one.
    pub fn of(meta: &Map<String, Value>) -> Option<Result<Self, String>> {
        let value = meta.get(META_KEY)?;
        Some(
            serde_json::from_value(value.clone())
                .map_err(|e| format!("meta `{META_KEY}` is not a sweep part ({e}): {value}")),
        )
    }

    pub fn write_to(&self, meta: &mut Map<String, Value>) {
        let value = serde_json::to_value(self).expect("a sweep part is plain data");
        meta.insert(META_KEY.into(), value);
    }
}

/// The part's `Id`s as text; the other columns (a cast may have added them, as nulls) are not
/// looked at.
pub fn ids(batch: &RecordBatch) -> Result<Vec<&str>, String> {
    let column = batch.column_by_name(ID).ok_or_else(|| format!("a sweep part without an `{ID}` column"))?;
    let text: Vec<Option<&str>> = match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => column.as_string::<i64>().iter().collect(),
        DataType::Utf8View => column.as_string_view().iter().collect(),
        other => return Err(format!("a sweep part's `{ID}` column is {other}, not text")),
    };
    if column.null_count() > 0 {
        return Err(format!("a sweep part with a null `{ID}`"));
    }
    Ok(text.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::StringArray;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn a_part_round_trips_through_meta_and_a_malformed_one_is_named() {
        let part = SweepPart {
            sweep: "flow@2026-12-07T10:00:00Z".into(),
            part: 2,
            parts: 5,
            before: "2026-12-07T10:03:00Z".parse().unwrap(),
        };
        let mut meta = Map::new();
        assert!(SweepPart::of(&meta).is_none());
        part.write_to(&mut meta);
        assert_eq!(SweepPart::of(&meta).unwrap().unwrap(), part);
        meta.insert(META_KEY.into(), serde_json::json!({"sweep": "x", "part": "two"}));
        let err = SweepPart::of(&meta).unwrap().unwrap_err();
        assert!(err.contains("live_ids") && err.contains("two"), "{err}");
    }

    #[test]
    fn ids_are_read_from_the_id_column_and_nulls_refused() {
        let schema =
            Arc::new(Schema::new(vec![Field::new("Name", DataType::Utf8, true), Field::new(ID, DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![None::<&str>, None])), Arc::new(StringArray::from(vec!["a", "b"]))],
        )
        .unwrap();
        assert_eq!(ids(&batch).unwrap(), ["a", "b"]);
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec![None::<&str>])), Arc::new(StringArray::from(vec![None::<&str>]))],
        )
        .unwrap();
        assert!(ids(&batch).unwrap_err().contains("null"));
    }
}
