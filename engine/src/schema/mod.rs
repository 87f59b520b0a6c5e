//! The table schema format shared by `convert` and warehouse table creation:
//! `{"fields": [{"name": "Id", "type": "string", "nullable": false}, ...]}`, and casting text
//! batches to it.

pub mod cast;

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMillisecondType};
use arrow::error::ArrowError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    pub fields: Vec<FieldSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default = "default_nullable")]
    pub nullable: bool,
}

fn default_nullable() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Boolean,
    Int64,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Date,
    /// UTC, millisecond precision: what Salesforce datetimes carry.
    Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("schema is not valid JSON in the schema format: {0}")]
    Json(String),
    #[error("schema has no fields")]
    Empty,
    #[error("schema names field `{0}` twice")]
    DuplicateField(String),
}

impl FieldType {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        Ok(match t {
            "string" => Self::String,
            "boolean" => Self::Boolean,
            "int64" => Self::Int64,
            "float64" => Self::Float64,
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            _ => {
                let inner = t.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')).ok_or_else(|| {
                    format!(
                        "unknown type `{t}`; expected string, boolean, int64, float64, decimal(p,s), date or timestamp"
                    )
                })?;
                let (p, s) = inner.split_once(',').ok_or_else(|| format!("`{t}`: write decimal(precision,scale)"))?;
                let precision: u8 = p.trim().parse().map_err(|_| format!("`{t}`: bad precision"))?;
                let scale: i8 = s.trim().parse().map_err(|_| format!("`{t}`: bad scale"))?;
                if !(1..=38).contains(&precision) || scale < 0 || scale as u8 > precision {
                    return Err(format!("`{t}`: precision must be 1..=38 and 0 <= scale <= precision"));
                }
                Self::Decimal { precision, scale }
            }
        })
    }

    pub fn arrow(&self) -> DataType {
        match self {
            Self::String => DataType::Utf8,
            Self::Boolean => DataType::Boolean,
            Self::Int64 => DataType::Int64,
            Self::Float64 => DataType::Float64,
            Self::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String => f.write_str("string"),
            Self::Boolean => f.write_str("boolean"),
            Self::Int64 => f.write_str("int64"),
            Self::Float64 => f.write_str("float64"),
            Self::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            Self::Date => f.write_str("date"),
            Self::Timestamp => f.write_str("timestamp"),
        }
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl TableSchema {
    pub fn from_json(text: &str) -> Result<Self, SchemaError> {
        let schema: Self = serde_json::from_str(text).map_err(|e| SchemaError::Json(e.to_string()))?;
        if schema.fields.is_empty() {
            return Err(SchemaError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        for f in &schema.fields {
            if !seen.insert(f.name.as_str()) {
                return Err(SchemaError::DuplicateField(f.name.clone()));
            }
        }
        Ok(schema)
    }

    pub fn arrow_schema(&self) -> Arc<Schema> {
        Arc::new(Schema::new(
            self.fields.iter().map(|f| Field::new(&f.name, f.ty.arrow(), f.nullable)).collect::<Vec<_>>(),
        ))
    }
}

/// Text (or dates, or timestamps of any unit) as `Timestamp(ms, "UTC")`. Arrow resolves the zone
/// name `UTC` only with its chrono-tz feature, so the parse targets "no zone" (offsets in the text
/// are applied, text without one is read as UTC) and the zone is then attached, which only
/// relabels the values.
pub fn utc_millis(array: &dyn Array, safe: bool) -> Result<ArrayRef, ArrowError> {
    let naive = DataType::Timestamp(TimeUnit::Millisecond, None);
    let parsed = cast_with_options(array, &naive, &CastOptions { safe, ..Default::default() })?;
    Ok(Arc::new(parsed.as_primitive::<TimestampMillisecondType>().clone().with_timezone("UTC")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_schema_parses_to_arrow() {
        let text = include_str!("../../../resources/salesforce/schema_account.json");
        let schema = TableSchema::from_json(text).unwrap();
        let arrow = schema.arrow_schema();
        assert_eq!(arrow.field_with_name("Id").unwrap().data_type(), &DataType::Utf8);
        assert!(!arrow.field_with_name("Id").unwrap().is_nullable());
        assert_eq!(arrow.field_with_name("AnnualRevenue").unwrap().data_type(), &DataType::Float64);
        assert_eq!(
            arrow.field_with_name("LastModifiedDate").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
    }

    #[test]
    fn every_type_parses_and_prints_back() {
        for t in ["string", "boolean", "int64", "float64", "decimal(18,2)", "date", "timestamp"] {
            assert_eq!(FieldType::parse(t).unwrap().to_string(), t);
        }
        for bad in ["text", "decimal(0,0)", "decimal(10,11)", "decimal(10)", "decimal(x,y)"] {
            assert!(FieldType::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_schemas_say_why() {
        assert!(matches!(TableSchema::from_json(r#"{"fields": []}"#), Err(SchemaError::Empty)));
        let dup = r#"{"fields": [{"name": "Id", "type": "string"}, {"name": "Id", "type": "string"}]}"#;
        assert_eq!(TableSchema::from_json(dup), Err(SchemaError::DuplicateField("Id".into())));
        let unknown = r#"{"fields": [{"name": "Id", "type": "string", "nulable": true}]}"#;
        assert!(TableSchema::from_json(unknown).unwrap_err().to_string().contains("nulable"));
    }
}
