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
