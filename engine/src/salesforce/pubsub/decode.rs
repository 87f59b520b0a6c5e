//! Avro payloads to JSON event data, with writer schemas fetched by id once and cached: every
//! event names its schema, and a schema change on Salesforce's side arrives as a new id.

use std::collections::HashMap;

use apache_avro::Schema;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("schema `{id}` is not valid Avro: {reason}")]
    Schema { id: String, reason: String },
    #[error("event `{event}` does not decode with schema `{id}`: {reason}")]
    Payload { event: String, id: String, reason: String },
}

#[derive(Default)]
pub struct Schemas {
    by_id: HashMap<String, Schema>,
}

impl Schemas {
    pub fn has(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn add(&mut self, id: &str, json: &str) -> Result<(), DecodeError> {
        let schema =
            Schema::parse_str(json).map_err(|e| DecodeError::Schema { id: id.to_string(), reason: e.to_string() })?;
        self.by_id.insert(id.to_string(), schema);
        Ok(())
    }

    /// One raw Avro datum (no container header) as JSON; unions become their value.
    pub fn decode(&self, event: &str, id: &str, payload: &[u8]) -> Result<Value, DecodeError> {
        let err = |reason: String| DecodeError::Payload { event: event.to_string(), id: id.to_string(), reason };
        let schema = self.by_id.get(id).ok_or_else(|| err("the schema is not loaded".into()))?;
        let mut rest = payload;
        let value = apache_avro::reader::datum::GenericDatumReader::builder(schema)
            .build()
            .and_then(|r| r.read_value(&mut rest))
            .map_err(|e| err(e.to_string()))?;
        // A datum written with another schema can read as garbage without an error; that it
        // does not end where the payload ends is how it shows.
        if !rest.is_empty() {
            return Err(err(format!(
                "{} bytes are left over after the datum: it was written with another schema",
                rest.len()
            )));
        }
        Value::try_from(value).map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_platform_event_and_names_a_bad_payload() {
        let json = r#"{"type":"record","name":"E","namespace":"com.sforce.eventbus","fields":[
            {"name":"CreatedDate","type":"long"},{"name":"Type","type":["null","string"],"default":null}]}"#;
        let mut schemas = Schemas::default();
        schemas.add("s1", json).unwrap();
        let schema = Schema::parse_str(json).unwrap();
        let record = apache_avro::types::Value::Record(vec![
            ("CreatedDate".into(), apache_avro::types::Value::Long(5)),
            (
                "Type".into(),
                apache_avro::types::Value::Union(1, Box::new(apache_avro::types::Value::String("RESULT".into()))),
            ),
        ]);
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(record)
            .unwrap();
        assert_eq!(
            schemas.decode("e1", "s1", &bytes).unwrap(),
            serde_json::json!({"CreatedDate": 5, "Type": "RESULT"})
        );
        let mut longer = bytes.clone();
        longer.push(0);
        let err = schemas.decode("e4", "s1", &longer).unwrap_err().to_string();
        assert!(err.contains("1 bytes are left over"), "{err}");
        let err = schemas.decode("e2", "s1", &[0xff]).unwrap_err().to_string();
        assert!(err.contains("event `e2`") && err.contains("schema `s1`"), "{err}");
        assert!(schemas.decode("e3", "nope", &bytes).is_err());
        assert!(schemas.add("bad", "{").unwrap_err().to_string().contains("schema `bad`"));
    }
}
