//! Writes the fuzz targets' seed inputs into `fuzz/corpus/<target>/seed-*`, each made from real
//! data: the project's flow files, templates they use, results pages as the simulator renders
//! them, a `BulkApi2JobEvent` as the simulator encodes it, bus messages as the publisher writes
//! them, and the records of the state-store fixture. The fuzzers grow the corpora from these.
//!
//! `cargo run -p bulkflow-engine --example fuzz_seeds` (from the repository root)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use bulkflow_engine::event::{Event, EventData};

fn write(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("seed-{name}")), bytes)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            yaml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut flows = Vec::new();
    yaml_files(Path::new("workflows"), &mut flows)?;
    yaml_files(Path::new("tests/fixtures/bad_flows"), &mut flows)?;
    for file in &flows {
        let name = file.to_string_lossy().replace('/', "_");
        write("flow_file", &name, &std::fs::read(file)?)?;
    }

    for (i, t) in [
        "{{env.NATS_URL}}",
        "{{env.GCS_BUCKET_PATH}}/salesforce/opportunity",
        "{{event.data.id}}",
        "salesforce_bulkapi.query_jobs.{{event.meta.object_name}}",
        "{{ event.data.list }}-{{event.id}}",
        "plain text",
    ]
    .iter()
    .enumerate()
    {
        write("template", &i.to_string(), t.as_bytes())?;
    }

    let page = b"\"Id\",\"Name\",\"Note\"\n\"001A\",\"Acme, \"\"Inc\"\"\",\"line1\nline2\"\n\"001B\",\"\",\n\"001C\",\"Caf\xc3\xa9\",\"x\"\n";
    for (i, control) in [0u8, 1, 7, 200].into_iter().enumerate() {
        write("bulk_csv", &i.to_string(), &[&[control][..], page].concat())?;
    }

    let event = bulkflow_sim::JobEvent {
        job_id: "750Sm00000ABCDEFGH".into(),
        object: "Account".into(),
        api_version: "63.0".into(),
        created_by_id: "005Sm00000ABCDEFGH".into(),
        state: bulkflow_sim::JobState::JobComplete,
        number_records_processed: 100,
        error_message: None,
        at: chrono::Utc::now(),
    };
    let records = [
        bulkflow_sim::pubsub::avro::JobEventRecord::job_state(&event, "uuid-1".into()),
        bulkflow_sim::pubsub::avro::JobEventRecord::result(&event, "uuid-2".into(), "FINAL", "/results".into()),
    ];
    for (i, record) in records.iter().enumerate() {
        let input = [bulkflow_sim::pubsub::avro::SCHEMA_JSON.as_bytes(), &[0], &record.encode()?].concat();
        write("avro_event", &i.to_string(), &input)?;
    }

    let schema =
        Arc::new(Schema::new(vec![Field::new("Id", DataType::Utf8, false), Field::new("n", DataType::Int64, true)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec!["001A", "001B"])), Arc::new(Int64Array::from(vec![Some(1), None]))],
    )?;
    let mut arrow = Event::json("e1", serde_json::Value::Null);
    arrow.data = EventData::Arrow(batch);
    arrow.meta.insert("run_id".into(), "flow@2026-12-01T08:00:00Z".into());
    for (i, event) in [arrow, Event::json("e2", serde_json::json!({"id": "750x", "Type": "RESULT"}))].iter().enumerate()
    {
        for (j, message) in bulkflow_engine::bus::wire::encode(event, "subject", 1 << 20)?.iter().enumerate() {
            let head: String = message.headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
            write("bus_message", &format!("{i}-{j}"), &[head.as_bytes(), b"\n", &message.payload].concat())?;
        }
    }

    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("engine/tests/fixtures/store/0.1.0.json")?)?;
    for (tree, entries) in fixture["trees"].as_object().into_iter().flatten() {
        for (i, entry) in entries.as_array().into_iter().flatten().enumerate() {
            let hex = entry[1].as_str().unwrap_or_default();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .filter_map(|k| hex.get(k..k + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect();
            write("store_record", &format!("{tree}-{i}"), &bytes)?;
        }
    }
    Ok(())
}
