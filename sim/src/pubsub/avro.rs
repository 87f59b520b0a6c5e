//! `BulkApi2JobEvent` as a platform event: the Avro schema `GetSchema` serves and the payload of
//! each event, shaped as the protocol reference describes real platform-event schemas.

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::types::Value;
use sha2::{Digest, Sha256};

use crate::events::{JobEvent, JobState};

pub const TOPIC: &str = "/event/BulkApi2JobEvent";

pub const SCHEMA_JSON: &str = r#"{"type":"record","name":"BulkApi2JobEvent","namespace":"com.sforce.eventbus","uuid":"bulkflow-sim-BulkApi2JobEvent","fields":[
{"name":"CreatedDate","type":"long","doc":"CreatedDate:DateTime"},
{"name":"CreatedById","type":"string","doc":"CreatedBy:EntityId"},
{"name":"EventUuid","type":["null","string"],"default":null,"doc":"Data:EventUuid"},
{"name":"Type","type":["null","string"],"default":null,"doc":"Data:Type"},
{"name":"JobIdentifier","type":["null","string"],"default":null,"doc":"Data:JobIdentifier"},
{"name":"JobState","type":["null","string"],"default":null,"doc":"Data:JobState"},
{"name":"ResultType","type":["null","string"],"default":null,"doc":"Data:ResultType"},
{"name":"ResultUrl","type":["null","string"],"default":null,"doc":"Data:ResultUrl"}]}"#;

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| match Schema::parse_str(SCHEMA_JSON) {
    Ok(s) => s,
    Err(e) => unreachable!("the built-in schema parses (checked by a test): {e}"),
});

/// A fingerprint of the schema, as Salesforce's schema ids are; opaque to clients.
pub fn schema_id() -> String {
    let digest = Sha256::digest(SCHEMA_JSON.as_bytes());
    digest.iter().take(11).map(|b| format!("{b:02x}")).collect()
}

/// One `BulkApi2JobEvent`'s fields.
#[derive(Debug, Clone)]
pub struct JobEventRecord {
    pub uuid: String,
    pub created_ms: i64,
    pub created_by_id: String,
    pub kind: &'static str,
    pub job_id: String,
    pub job_state: &'static str,
    pub result_type: Option<&'static str>,
    pub result_url: Option<String>,
}

/// The picklist value; the reference spells the aborted state `Abort`.
pub fn job_state_name(state: JobState) -> &'static str {
    match state {
        JobState::UploadComplete => "UploadComplete",
        JobState::InProgress => "InProgress",
        JobState::Aborted => "Abort",
        JobState::JobComplete => "JobComplete",
        JobState::Failed => "Failed",
    }
}

impl JobEventRecord {
    pub fn job_state(event: &JobEvent, uuid: String) -> Self {
        JobEventRecord {
            uuid,
            created_ms: event.at.timestamp_millis(),
            created_by_id: event.created_by_id.clone(),
            kind: "JOB_STATE",
            job_id: event.job_id.clone(),
            job_state: job_state_name(event.state),
            result_type: None,
            result_url: None,
        }
    }

    pub fn result(event: &JobEvent, uuid: String, result_type: &'static str, url: String) -> Self {
        JobEventRecord {
            kind: "RESULT",
            result_type: Some(result_type),
            result_url: Some(url),
            ..Self::job_state(event, uuid)
        }
    }

    /// Raw Avro binary of one record: no container header, no fingerprint prefix.
    pub fn encode(&self) -> Result<Vec<u8>, apache_avro::Error> {
        let text = |s: Option<&str>| match s {
            Some(s) => Value::Union(1, Box::new(Value::String(s.to_string()))),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        let record = Value::Record(vec![
            ("CreatedDate".into(), Value::Long(self.created_ms)),
            ("CreatedById".into(), Value::String(self.created_by_id.clone())),
            ("EventUuid".into(), text(Some(&self.uuid))),
            ("Type".into(), text(Some(self.kind))),
            ("JobIdentifier".into(), text(Some(&self.job_id))),
            ("JobState".into(), text(Some(self.job_state))),
            ("ResultType".into(), text(self.result_type)),
            ("ResultUrl".into(), text(self.result_url.as_deref())),
        ]);
        apache_avro::writer::datum::GenericDatumWriter::builder(&SCHEMA).build()?.write_value_to_vec(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parses_and_a_record_round_trips() {
        let record = JobEventRecord {
            uuid: "u1".into(),
            created_ms: 1_700_000_000_000,
            created_by_id: "005x".into(),
            kind: "RESULT",
            job_id: "750x".into(),
            job_state: "JobComplete",
            result_type: Some("FINAL"),
            result_url: Some("http://h/r".into()),
        };
        let bytes = record.encode().unwrap();
        let value = apache_avro::reader::datum::GenericDatumReader::builder(&SCHEMA)
            .build()
            .unwrap()
            .read_value(&mut bytes.as_slice())
            .unwrap();
        let Value::Record(fields) = value else { panic!("not a record") };
        assert_eq!(fields[4], ("JobIdentifier".into(), Value::Union(1, Box::new(Value::String("750x".into())))));
        assert_eq!(schema_id().len(), 22);
    }
}
