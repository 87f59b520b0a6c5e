//! The unit that moves through a flow: data (an Arrow batch, JSON or bytes) plus `meta` that tasks
//! carry forward, an id that stays stable across redeliveries, and an optional subject.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub enum EventData {
    Json(Value),
    Arrow(RecordBatch),
    Bytes(Arc<[u8]>),
}

#[derive(Debug, Clone)]
pub struct Event {
    /// Deterministic where it can be (a job id, a batch id): downstream dedupe and file names use it.
    pub id: String,
    pub subject: Option<String>,
    pub data: EventData,
    pub meta: Map<String, Value>,
    pub created_at: DateTime<Utc>,
}

impl Event {
    pub fn json(id: impl Into<String>, data: Value) -> Self {
        Self { id: id.into(), subject: None, data: EventData::Json(data), meta: Map::new(), created_at: Utc::now() }
    }

    /// The event as templates see it: `{data, meta, id, subject}`. Arrow and byte payloads are not
    /// addressable by path, so `event.data.*` on them is a missing path.
    pub fn template_view(&self) -> Value {
        let mut view = Map::new();
        let data = match &self.data {
            EventData::Json(v) => v.clone(),
            EventData::Arrow(_) | EventData::Bytes(_) => Value::Null,
        };
        view.insert("data".into(), data);
        view.insert("meta".into(), Value::Object(self.meta.clone()));
        view.insert("id".into(), Value::String(self.id.clone()));
        if let Some(s) = &self.subject {
            view.insert("subject".into(), Value::String(s.clone()));
        }
        Value::Object(view)
    }

    /// `template` rendered against this event and the process environment: what every task that
    /// names something by template (a path, a subject, a table, a query) does with its event.
    pub fn render(
        &self,
        template: &crate::flow::template::Template,
        env: &crate::env::EnvLookup,
    ) -> Result<String, crate::flow::template::TemplateError> {
        let view = self.template_view();
        template.render_string(&crate::flow::template::Context { event: Some(&view), env: &**env })
    }

    /// A JSON event back from its [`template_view`](Self::template_view), as checkpoints keep
    /// it; `None` if `view` is not one.
    pub fn from_view(view: &Value) -> Option<Event> {
        let id = view.get("id")?.as_str()?.to_owned();
        let meta = view.get("meta").and_then(Value::as_object).cloned().unwrap_or_default();
        let subject = view.get("subject").and_then(Value::as_str).map(str::to_owned);
        let data = view.get("data").cloned().unwrap_or(Value::Null);
        Some(Event { id, subject, data: EventData::Json(data), meta, created_at: Utc::now() })
    }
}

/// The `meta` keys that place an event in an export run. They are part of the bus's wire format
/// (`bus::wire` copies some into headers other clients read), so they never change spelling.
pub mod meta {
    pub const RUN_ID: &str = "run_id";
    pub const JOB_ID: &str = "job_id";
    pub const PAGE: &str = "page";
    pub const BATCH_SEQ: &str = "batch_seq";
    pub const TOTAL_BATCHES: &str = "total_batches";
    /// A batch published again after the bus lost it: its message ids gain the generation, so a
    /// stream that still remembers the first ids does not drop them as duplicates.
    pub const BUS_GENERATION: &str = "bus_generation";
}

/// An event's place in an export run, read from and written to its `meta` in this one place: the
/// results reader writes it on every batch; the publisher, the writers, the ledger and the bus
/// read it. Fields a `meta` lacks (or holds in another shape) are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTag {
    pub run: Option<crate::run::RunId>,
    pub job: Option<String>,
    pub page: Option<u64>,
    pub batch_seq: Option<u64>,
    /// On a run's last batch only.
    pub total_batches: Option<u64>,
    /// Past the first generation only.
    pub bus_generation: Option<u64>,
}

impl RunTag {
    pub fn of(meta: &Map<String, Value>) -> Self {
        let text = |k: &str| meta.get(k).and_then(Value::as_str);
        let number = |k: &str| meta.get(k).and_then(Value::as_u64);
        Self {
            run: text(meta::RUN_ID).and_then(|r| r.parse().ok()),
            job: text(meta::JOB_ID).map(str::to_owned),
            page: number(meta::PAGE),
            batch_seq: number(meta::BATCH_SEQ),
            total_batches: number(meta::TOTAL_BATCHES),
            bus_generation: number(meta::BUS_GENERATION),
        }
    }

    /// Writes the fields that are set; the others are left as `meta` has them.
    pub fn write_to(&self, meta: &mut Map<String, Value>) {
        if let Some(run) = &self.run {
            meta.insert(meta::RUN_ID.into(), Value::from(run.as_str()));
        }
        if let Some(job) = &self.job {
            meta.insert(meta::JOB_ID.into(), Value::from(job.as_str()));
        }
        let numbers = [
            (meta::PAGE, self.page),
            (meta::BATCH_SEQ, self.batch_seq),
            (meta::TOTAL_BATCHES, self.total_batches),
            (meta::BUS_GENERATION, self.bus_generation),
        ];
        for (key, value) in numbers {
            if let Some(n) = value {
                meta.insert(key.into(), Value::from(n));
            }
        }
    }
}

#[cfg(test)]
mod run_tag_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_tag_round_trips_through_meta_and_reads_what_is_there() {
        let tag = RunTag {
            run: Some("flow@2026-12-07T04:00:00Z".parse().unwrap()),
            job: Some("750xx".into()),
            page: Some(2),
            batch_seq: Some(7),
            total_batches: Some(8),
            bus_generation: Some(1),
        };
        let mut meta = Map::new();
        meta.insert("object_name".into(), json!("account"));
        tag.write_to(&mut meta);
        assert_eq!(meta["run_id"], "flow@2026-12-07T04:00:00Z");
        assert_eq!((meta["batch_seq"].clone(), meta["total_batches"].clone()), (json!(7), json!(8)));
        assert_eq!(meta["object_name"], "account", "other keys are kept");
        assert_eq!(RunTag::of(&meta), tag);
        let foreign = json!({"run_id": "not a run id", "batch_seq": "3"});
        let read = RunTag::of(foreign.as_object().unwrap());
        assert_eq!((read.run, read.batch_seq), (None, None), "shapes it does not know are not guessed");
    }
}
