//! How an event travels on the bus, readable by any NATS client and any Arrow library.
//!
//! - Payload: an Arrow batch is an Arrow IPC stream (`application/vnd.apache.arrow.stream`); JSON
//!   is its text (`application/json`); bytes are themselves (`application/octet-stream`).
//! - Headers: `Content-Type`; `Nats-Msg-Id` (the event id, deterministic, so a republish is
//!   deduplicated); `Bulkflow-Event-Id`; `Bulkflow-Meta` (the event's meta as JSON, restored on
//!   the other side); `Bulkflow-Run-Id`, `Bulkflow-Job-Id`, `Bulkflow-Batch-Seq`,
//!   `Bulkflow-Total-Batches` when meta has `run_id`, `job_id`, `batch_seq` (or `batch_index`),
//!   `total_batches`; `Bulkflow-Schema-Fingerprint` for Arrow; `Bulkflow-Created-At`.
//! - Splitting: a message larger than the bus's `max_payload` is split into parts with their own
//!   deterministic ids (`<event id>#<i>/<n>`) and the headers `Bulkflow-Part` (0-based),
//!   `Bulkflow-Parts` and `Bulkflow-Split`. An Arrow batch is split by rows (`rows`): every part
//!   is a complete IPC stream of a slice of the rows, so each message alone is still readable by
//!   any Arrow reader. Only a single row larger than `max_payload`, or JSON and bytes, are split
//!   by bytes (`bytes`): the parts' payloads concatenated are the payload.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Headers, MSG_ID_HEADER, Outgoing};
use crate::event::{Event, EventData, meta};

pub const CONTENT_TYPE: &str = "Content-Type";
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
pub const JSON: &str = "application/json";
pub const OCTET_STREAM: &str = "application/octet-stream";
pub const EVENT_ID: &str = "Bulkflow-Event-Id";
pub const META: &str = "Bulkflow-Meta";
pub const RUN_ID: &str = "Bulkflow-Run-Id";
pub const JOB_ID: &str = "Bulkflow-Job-Id";
pub const BATCH_SEQ: &str = "Bulkflow-Batch-Seq";
pub const TOTAL_BATCHES: &str = "Bulkflow-Total-Batches";
pub const SCHEMA_FINGERPRINT: &str = "Bulkflow-Schema-Fingerprint";
pub const CREATED_AT: &str = "Bulkflow-Created-At";
pub const PART: &str = "Bulkflow-Part";
pub const PARTS: &str = "Bulkflow-Parts";
pub const SPLIT: &str = "Bulkflow-Split";

/// Room kept for the part headers and the NATS protocol's own header framing.
const HEADER_MARGIN: usize = 512;
/// Attempts at finding a row split whose every part fits before falling back to bytes.
const SPLIT_ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot encode the Arrow batch as an IPC stream: {0}")]
    Encode(#[source] arrow::error::ArrowError),
    #[error("message {msg}: {reason}")]
    Decode { msg: String, reason: String },
    #[error("event `{event}`: its headers alone ({size} bytes) do not fit the bus's max_payload ({max} bytes)")]
    HeadersTooLarge { event: String, size: usize, max: usize },
    #[error("event `{event}`: {what} cannot contain a line break")]
    LineBreak { event: String, what: &'static str },
}

/// A stable fingerprint of an Arrow schema (field names, types, nullability, in order), so a
/// reader can tell that two batches share a schema without comparing them. FNV-1a: not for
/// security, only stable across processes and releases, which std's hasher is not.
pub fn schema_fingerprint(schema: &Schema) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for field in schema.fields() {
        let text = format!("{}:{}:{};", field.name(), field.data_type(), field.is_nullable());
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn base_headers(event: &Event, content_type: &str) -> Result<Headers, WireError> {
    let line_break = |what| WireError::LineBreak { event: event.id.clone(), what };
    if event.id.contains(['\r', '\n']) {
        return Err(line_break("the event id"));
    }
    let mut h: Headers = vec![
        (CONTENT_TYPE.into(), content_type.into()),
        (EVENT_ID.into(), event.id.clone()),
        (CREATED_AT.into(), event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    ];
    // serde_json escapes control characters, so the meta's JSON is one line.
    h.push((META.into(), Value::Object(event.meta.clone()).to_string()));
    let from_meta = [
        (RUN_ID, &[meta::RUN_ID][..]),
        (JOB_ID, &[meta::JOB_ID]),
        (BATCH_SEQ, &[meta::BATCH_SEQ, "batch_index"]),
        (TOTAL_BATCHES, &[meta::TOTAL_BATCHES]),
    ];
    for (header, keys) in from_meta {
        if let Some(value) = keys.iter().find_map(|k| event.meta.get(*k).and_then(text)) {
            if value.contains(['\r', '\n']) {
                return Err(line_break("a meta value sent as a header"));
            }
            h.push((header.into(), value));
        }
    }
    Ok(h)
}

fn headers_size(h: &Headers) -> usize {
    h.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>() + 16
}

/// An IPC stream holding `batch`.
pub fn ipc_stream(batch: &RecordBatch) -> Result<Vec<u8>, WireError> {
    let mut buf = Vec::new();
    let mut writer = StreamWriter::try_new(&mut buf, &batch.schema()).map_err(WireError::Encode)?;
    writer.write(batch).map_err(WireError::Encode)?;
    writer.finish().map_err(WireError::Encode)?;
    drop(writer);
    Ok(buf)
}

pub use crate::event::meta::BUS_GENERATION;

/// The message id of `event` (before splitting): its id, with the bus generation past the first.
fn message_id(event: &Event) -> String {
    match event.meta.get(BUS_GENERATION).and_then(Value::as_u64) {
        Some(generation) if generation > 0 => format!("{}~g{generation}", event.id),
        _ => event.id.clone(),
    }
}

/// The messages that carry `event` to `subject`, each within `max_payload` (headers included).
pub fn encode(event: &Event, subject: &str, max_payload: usize) -> Result<Vec<Outgoing>, WireError> {
    let mut headers = match &event.data {
        EventData::Arrow(batch) => {
            let mut h = base_headers(event, ARROW_STREAM)?;
            h.push((SCHEMA_FINGERPRINT.into(), schema_fingerprint(&batch.schema())));
            h
        }
        EventData::Json(_) => base_headers(event, JSON)?,
        EventData::Bytes(_) => base_headers(event, OCTET_STREAM)?,
    };
    let id = message_id(event);
    let header_size = headers_size(&headers) + HEADER_MARGIN + id.len() * 2;
    let budget = max_payload.checked_sub(header_size).filter(|b| *b > 0).ok_or_else(|| WireError::HeadersTooLarge {
        event: event.id.clone(),
        size: header_size,
        max: max_payload,
    })?;
    let (parts, split): (Vec<Vec<u8>>, &str) = match &event.data {
        EventData::Arrow(batch) => {
            let whole = ipc_stream(batch)?;
            if whole.len() <= budget {
                (vec![whole], "")
            } else {
                match split_rows(batch, whole.len(), budget)? {
                    Some(parts) => (parts, "rows"),
                    None => (chunks(&whole, budget), "bytes"),
                }
            }
        }
        EventData::Json(v) => {
            let whole = v.to_string().into_bytes();
            if whole.len() <= budget { (vec![whole], "") } else { (chunks(&whole, budget), "bytes") }
        }
        EventData::Bytes(b) => {
            if b.len() <= budget {
                (vec![b.to_vec()], "")
            } else {
                (chunks(b, budget), "bytes")
            }
        }
    };
    let n = parts.len();
    if n == 1 {
        headers.push((MSG_ID_HEADER.into(), id.clone()));
    }
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut h = headers.clone();
            let msg_id = if n == 1 { id.clone() } else { part_id(&id, i, n) };
            if n > 1 {
                h.push((MSG_ID_HEADER.into(), msg_id.clone()));
                h.push((PART.into(), i.to_string()));
                h.push((PARTS.into(), n.to_string()));
                h.push((SPLIT.into(), split.into()));
            }
            Outgoing { subject: subject.to_string(), msg_id, headers: h, payload: Bytes::from(payload) }
        })
        .collect())
}

/// The message id of part `i` of `n` of event `id`.
pub fn part_id(id: &str, i: usize, n: usize) -> String {
    format!("{id}#{i}/{n}")
}

fn chunks(bytes: &[u8], budget: usize) -> Vec<Vec<u8>> {
    bytes.chunks(budget).map(<[u8]>::to_vec).collect()
}

/// Row slices of `batch`, each an IPC stream within `budget`; `None` when even single rows do not
/// fit. Deterministic: the same batch and budget always give the same parts.
fn split_rows(batch: &RecordBatch, whole: usize, budget: usize) -> Result<Option<Vec<Vec<u8>>>, WireError> {
    let rows = batch.num_rows();
    let mut n = whole.div_ceil(budget).max(2);
    for _ in 0..SPLIT_ATTEMPTS {
        let per = rows.div_ceil(n).max(1);
        let mut parts = Vec::new();
        let mut largest = 0;
        for start in (0..rows).step_by(per) {
            let part = ipc_stream(&batch.slice(start, per.min(rows - start)))?;
            largest = largest.max(part.len());
            parts.push(part);
        }
        if largest <= budget {
            return Ok(Some(parts));
        }
        if per == 1 {
            return Ok(None);
        }
        // Grow the part count by how far the largest part overshot, plus one for luck.
        n = (n * largest).div_ceil(budget) + 1;
    }
    Ok(None)
}

/// One received message, decoded as far as it can be on its own.
#[derive(Debug)]
pub struct Part {
    pub event_id: String,
    /// This part's index and the event's part count (0 and 1 when not split).
    pub index: usize,
    pub count: usize,
    pub split_by_bytes: bool,
    pub content_type: String,
    pub payload: Bytes,
    pub meta: Map<String, Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub fingerprint: Option<String>,
}

impl Part {
    /// Reads our headers; a message from another publisher (no headers) is one JSON or bytes
    /// event whose id is its message id, or `fallback_id` without one.
    pub fn from_message(headers: &Headers, payload: Bytes, fallback_id: &str) -> Result<Self, WireError> {
        let get = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let msg = get(MSG_ID_HEADER).unwrap_or(fallback_id).to_string();
        let bad = |reason: String| WireError::Decode { msg: msg.clone(), reason };
        let number = |name: &str, default: usize| -> Result<usize, WireError> {
            get(name)
                .map_or(Ok(default), |v| v.parse().map_err(|_| bad(format!("header {name} `{v}` is not a number"))))
        };
        let (index, count) = (number(PART, 0)?, number(PARTS, 1)?);
        if count == 0 || index >= count {
            return Err(bad(format!("part {index} of {count} is out of range")));
        }
        let meta = match get(META) {
            Some(text) => match serde_json::from_str(text) {
                Ok(Value::Object(m)) => m,
                _ => return Err(bad(format!("header {META} is not a JSON object"))),
            },
            None => Map::new(),
        };
        let content_type = match get(CONTENT_TYPE) {
            Some(ct) => ct.to_string(),
            None if serde_json::from_slice::<Value>(&payload).is_ok() => JSON.to_string(),
            None => OCTET_STREAM.to_string(),
        };
        Ok(Self {
            event_id: get(EVENT_ID).unwrap_or(&msg).to_string(),
            index,
            count,
            split_by_bytes: get(SPLIT) == Some("bytes"),
            content_type,
            payload,
            meta,
            created_at: get(CREATED_AT)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            fingerprint: get(SCHEMA_FINGERPRINT).map(str::to_string),
        })
    }
}

/// Every batch of one Arrow IPC stream. arrow-ipc 60.1 panics on some malformed streams (a
/// buffer that runs past the message, found by the `bus_message` fuzz target), and a message
/// on the bus is outside input: a panic there is turned into the error it should have been.
fn read_ipc_stream(stream: Bytes) -> Result<Vec<RecordBatch>, String> {
    let read = || -> Result<Vec<RecordBatch>, String> {
        let reader = StreamReader::try_new(std::io::Cursor::new(stream), None)
            .map_err(|e| format!("not an Arrow IPC stream: {e}"))?;
        reader.map(|batch| batch.map_err(|e| format!("bad Arrow batch: {e}"))).collect()
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
        .unwrap_or_else(|_| Err("a malformed Arrow IPC stream (the reader gave up on it)".into()))
}

/// The event carried by `parts` (all of one event, in index order).
pub fn assemble(parts: &[Part], subject: &str) -> Result<Event, WireError> {
    let first = parts.first().ok_or_else(|| WireError::Decode { msg: "?".into(), reason: "no parts".into() })?;
    let bad = |reason: String| WireError::Decode { msg: first.event_id.clone(), reason };
    let payload = || -> Bytes {
        if parts.len() == 1 {
            first.payload.clone()
        } else {
            Bytes::from(parts.iter().flat_map(|p| p.payload.iter().copied()).collect::<Vec<u8>>())
        }
    };
    let data = match first.content_type.as_str() {
        ARROW_STREAM => {
            let streams: Vec<Bytes> =
                if first.split_by_bytes { vec![payload()] } else { parts.iter().map(|p| p.payload.clone()).collect() };
            let mut batches = Vec::new();
            for stream in streams {
                batches.extend(read_ipc_stream(stream).map_err(bad)?);
            }
            let schema =
                batches.first().map(RecordBatch::schema).ok_or_else(|| bad("an Arrow stream with no batch".into()))?;
            let batch = arrow::compute::concat_batches(&schema, &batches)
                .map_err(|e| bad(format!("parts do not share a schema: {e}")))?;
            if let Some(expected) = &first.fingerprint {
                let found = schema_fingerprint(&batch.schema());
                if *expected != found {
                    return Err(bad(format!("schema fingerprint {found} does not match the header's {expected}")));
                }
            }
            EventData::Arrow(batch)
        }
        JSON => EventData::Json(serde_json::from_slice(&payload()).map_err(|e| bad(format!("not JSON: {e}")))?),
        _ => EventData::Bytes(Arc::from(payload().as_ref())),
    };
    Ok(Event {
        id: first.event_id.clone(),
        subject: Some(subject.to_string()),
        data,
        meta: first.meta.clone(),
        created_at: first.created_at.unwrap_or_else(Utc::now),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use serde_json::json;

    use super::*;

    pub(crate) fn batch(rows: usize, text_len: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("Id", DataType::Utf8, false),
            Field::new("N", DataType::Int64, true),
        ]));
        let ids: Vec<String> = (0..rows).map(|i| format!("{i:0>width$}", width = text_len)).collect();
        RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(ids)), Arc::new(Int64Array::from_iter_values(0..rows as i64))],
        )
        .unwrap()
    }

    fn arrow_event(rows: usize, text_len: usize) -> Event {
        let mut e = Event::json("job1-p0-b3", json!(null));
        e.data = EventData::Arrow(batch(rows, text_len));
        e.meta.insert("run_id".into(), json!("flow@2024-01-01T00:00:00Z"));
        e.meta.insert("job_id".into(), json!("750xx"));
        e.meta.insert("batch_seq".into(), json!(3));
        e.meta.insert("object_name".into(), json!("account"));
        e
    }

    fn round_trip(event: &Event, max: usize) -> (Vec<Outgoing>, Event) {
        let msgs = encode(event, "a.b", max).unwrap();
        let parts: Vec<Part> =
            msgs.iter().map(|m| Part::from_message(&m.headers, m.payload.clone(), "x").unwrap()).collect();
        (msgs, assemble(&parts, "a.b").unwrap())
    }

    #[test]
    fn a_batch_published_again_after_the_bus_lost_it_has_new_message_ids_and_the_same_event_id() {
        let mut event = arrow_event(10, 8);
        event.meta.insert(BUS_GENERATION.into(), serde_json::json!(2));
        let (msgs, back) = round_trip(&event, 1 << 20);
        assert_eq!(msgs[0].msg_id, "job1-p0-b3~g2");
        assert_eq!(back.id, "job1-p0-b3");
        let mut event = arrow_event(20_000, 40);
        event.meta.insert(BUS_GENERATION.into(), serde_json::json!(2));
        let (parts, back) = round_trip(&event, 256 * 1024);
        assert_eq!(back.id, "job1-p0-b3");
        assert!(parts.len() > 1);
        assert!(parts.iter().enumerate().all(|(i, m)| m.msg_id == part_id("job1-p0-b3~g2", i, parts.len())));
    }

    #[test]
    fn a_small_batch_is_one_message_with_the_event_id() {
        let event = arrow_event(10, 8);
        let (msgs, back) = round_trip(&event, 1 << 20);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].msg_id, "job1-p0-b3");
        let h = |n: &str| msgs[0].headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(h(CONTENT_TYPE).as_deref(), Some(ARROW_STREAM));
        assert_eq!(h(RUN_ID).as_deref(), Some("flow@2024-01-01T00:00:00Z"));
        assert_eq!(h(JOB_ID).as_deref(), Some("750xx"));
        assert_eq!(h(BATCH_SEQ).as_deref(), Some("3"));
        assert_eq!(h(MSG_ID_HEADER).as_deref(), Some("job1-p0-b3"));
        let EventData::Arrow(b) = &back.data else { panic!("not arrow") };
        let EventData::Arrow(a) = &event.data else { unreachable!() };
        assert_eq!(a, b);
        assert_eq!(back.meta, event.meta);
        assert_eq!(back.id, event.id);
    }

    #[test]
    fn a_large_batch_is_split_by_rows_into_readable_parts_with_their_own_ids() {
        let event = arrow_event(20_000, 100);
        let (msgs, back) = round_trip(&event, 256 * 1024);
        assert!(msgs.len() > 4, "{}", msgs.len());
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.msg_id, part_id("job1-p0-b3", i, msgs.len()));
            let size = m.payload.len() + m.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>();
            assert!(size <= 256 * 1024, "part {i} is {size} bytes");
            // Each part alone is a valid IPC stream.
            let reader = StreamReader::try_new(std::io::Cursor::new(m.payload.clone()), None).unwrap();
            assert!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>() > 0);
        }
        let EventData::Arrow(b) = &back.data else { panic!("not arrow") };
        let EventData::Arrow(a) = &event.data else { unreachable!() };
        assert_eq!(a, b);
        // Deterministic: the same event splits the same way.
        let again = encode(&event, "a.b", 256 * 1024).unwrap();
        assert_eq!(
            again.iter().map(|m| &m.payload).collect::<Vec<_>>(),
            msgs.iter().map(|m| &m.payload).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_row_larger_than_max_payload_travels_in_byte_chunks() {
        let event = arrow_event(3, 40_000);
        let (msgs, back) = round_trip(&event, 16 * 1024);
        assert!(msgs.len() > 3);
        assert!(msgs[0].headers.contains(&(SPLIT.to_string(), "bytes".to_string())));
        let EventData::Arrow(b) = &back.data else { panic!("not arrow") };
        let EventData::Arrow(a) = &event.data else { unreachable!() };
        assert_eq!(a, b);
    }

    #[test]
    fn json_and_bytes_travel_too() {
        let mut e = Event::json("j1", json!({"x": [1, 2, "three"]}));
        e.meta.insert("k".into(), json!({"nested": "line\nbreak"}));
        let (_, back) = round_trip(&e, 1 << 20);
        assert_eq!(back.template_view()["data"], json!({"x": [1, 2, "three"]}));
        assert_eq!(back.meta, e.meta);
        let big = Event { data: EventData::Bytes(Arc::from(vec![7u8; 50_000].as_slice())), ..e };
        let (msgs, back) = round_trip(&big, 8 * 1024);
        assert!(msgs.len() > 5);
        let EventData::Bytes(b) = back.data else { panic!("not bytes") };
        assert_eq!(&*b, vec![7u8; 50_000].as_slice());
    }

    #[test]
    fn a_foreign_message_without_headers_is_json_or_bytes() {
        let p = Part::from_message(&vec![], Bytes::from_static(b"{\"a\":1}"), "seq-9").unwrap();
        let e = assemble(&[p], "s").unwrap();
        assert_eq!(e.id, "seq-9");
        assert_eq!(e.template_view()["data"], json!({"a": 1}));
    }
}
