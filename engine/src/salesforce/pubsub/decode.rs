//! Avro payloads to JSON event data, with writer schemas fetched by id once and cached: every
//! event names its schema, and a schema change on Salesforce's side arrives as a new id.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::Name;
use serde_json::Value;

/// How deep a schema may nest, counting through the named types it refers to. Salesforce's event
/// schemas are flat records (a union or an array at most inside); the bound keeps decoding a
/// datum, converting it and dropping it from recursing past a thread's stack.
const MAX_SCHEMA_DEPTH: usize = 32;
/// How many schema nodes one check may visit: references to named types can fan out (each of
/// several fields naming a type whose fields name another), and the walk must stay cheap.
const MAX_SCHEMA_NODES: usize = 100_000;

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
        let invalid = |reason: String| DecodeError::Schema { id: id.to_string(), reason };
        let schema = Schema::parse_str(json).map_err(|e| invalid(e.to_string()))?;
        Bounds::default().check(&schema, 1).map_err(invalid)?;
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

/// Refuses a schema whose datums could nest without bound: one that contains itself (a record
/// with a field of its own type, however indirectly — Avro allows it, Salesforce never sends it,
/// and a datum of it recurses once per few bytes of payload) or one nested past
/// [`MAX_SCHEMA_DEPTH`].
#[derive(Default)]
struct Bounds<'a> {
    /// The named types defined so far, to follow a reference into.
    named: HashMap<&'a Name, &'a Schema>,
    /// The named types the walk is inside of: a reference to one of them is recursion.
    enclosing: Vec<&'a Name>,
    nodes: usize,
}

impl<'a> Bounds<'a> {
    fn check(&mut self, schema: &'a Schema, depth: usize) -> Result<(), String> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(format!("it nests deeper than {MAX_SCHEMA_DEPTH} levels"));
        }
        self.nodes += 1;
        if self.nodes > MAX_SCHEMA_NODES {
            return Err(format!("it has more than {MAX_SCHEMA_NODES} nodes, counting through named types"));
        }
        match schema {
            Schema::Record(record) => {
                self.named.insert(&record.name, schema);
                self.enclosing.push(&record.name);
                for field in &record.fields {
                    self.check(&field.schema, depth + 1)?;
                }
                self.enclosing.pop();
            }
            Schema::Enum(e) => {
                self.named.insert(&e.name, schema);
            }
            Schema::Fixed(f) | Schema::Duration(f) => {
                self.named.insert(&f.name, schema);
            }
            Schema::Array(array) => self.check(&array.items, depth + 1)?,
            Schema::Map(map) => self.check(&map.types, depth + 1)?,
            Schema::Union(union) => {
                for variant in union.variants() {
                    self.check(variant, depth + 1)?;
                }
            }
            Schema::Ref { name } => {
                if self.enclosing.contains(&name) {
                    return Err(format!("it is recursive: `{}` contains itself", name.fullname(None)));
                }
                if let Some(&named) = self.named.get(name) {
                    self.check(named, depth)?;
                }
            }
            _ => {}
        }
        Ok(())
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

    #[test]
    fn a_recursive_or_deep_schema_is_refused_before_any_datum_is_read() {
        let mut schemas = Schemas::default();
        // A linked list, the textbook recursive schema, directly and through another record.
        let list = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},
            {"name":"next","type":["null","Node"]}]}"#;
        let err = schemas.add("list", list).unwrap_err().to_string();
        assert!(err.contains("schema `list`") && err.contains("`Node` contains itself"), "{err}");
        let indirect = r#"{"type":"record","name":"A","namespace":"x","fields":[{"name":"b","type":
            {"type":"record","name":"B","fields":[{"name":"a","type":{"type":"array","items":"A"}}]}}]}"#;
        let err = schemas.add("indirect", indirect).unwrap_err().to_string();
        assert!(err.contains("`x.A` contains itself"), "{err}");
        // Nesting: 40 arrays of arrays.
        let deep = (0..40).fold(r#""long""#.to_string(), |inner, _| format!(r#"{{"type":"array","items":{inner}}}"#));
        let err = schemas.add("deep", &deep).unwrap_err().to_string();
        assert!(err.contains("deeper than 32"), "{err}");
        // Fan-out through named types: each level's record has two fields of the one before.
        let mut fan = r#"{"type":"record","name":"T0","fields":[{"name":"x","type":"long"}]}"#.to_string();
        for level in 1..24 {
            fan = format!(
                r#"{{"type":"record","name":"T{level}","fields":[{{"name":"a","type":{fan}}},{{"name":"b","type":"T{}"}}]}}"#,
                level - 1
            );
        }
        let err = schemas.add("fan", &fan).unwrap_err().to_string();
        assert!(err.contains("more than 100000 nodes"), "{err}");
        // A named type used twice, not inside itself, is fine; so is the flat event schema.
        let twice = r#"{"type":"record","name":"E","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":2}},
            {"name":"b","type":"F"},{"name":"c","type":{"type":"record","name":"R","fields":[]}},{"name":"d","type":"R"}]}"#;
        schemas.add("twice", twice).unwrap();
        assert!(!schemas.has("list") && schemas.has("twice"));
    }
}
