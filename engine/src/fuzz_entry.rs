//! One function per parser of outside input, called by the fuzz targets (`fuzz/fuzz_targets/`,
//! run with cargo-fuzz on nightly) and by `tests/fuzz_corpora.rs`, which runs every kept corpus
//! file through them on stable in CI. Each must return, whatever the bytes: an error is fine, a
//! panic, a hang or an allocation without bound is the bug a fuzzer looks for.

use std::path::Path;

use bytes::Bytes;

use crate::credentials::CredentialsRoot;

/// A flow file, loaded as `bulkflow validate` loads one (resources from a folder that is not there).
pub fn flow_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let credentials = CredentialsRoot::default();
    let ctx = crate::flow::LoadContext {
        resources_dir: Path::new("/nonexistent-bulkflow-fuzz-resources"),
        credentials: &credentials,
        env: &|name| (name == "FUZZ").then(|| "value".to_string()),
    };
    let _ = crate::flow::load_str(Path::new("fuzz.yaml"), text, &ctx);
}

/// A `{{ ... }}` template, parsed, then rendered against a small event.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(template) = crate::flow::template::Template::parse(text) else { return };
    let event = serde_json::json!({"id": "e1", "data": {"Id": "001", "n": 5, "list": [1, 2]}, "meta": {"run": "r"}});
    let ctx = crate::flow::template::Context { event: Some(&event), env: &|_| Some("env".to_string()) };
    let _ = template.render(&ctx);
}

/// A Bulk API results page: the first byte picks the delimiter and how the body is chunked, as
/// the network would split it.
pub fn bulk_csv(data: &[u8]) {
    let Some((&control, body)) = data.split_first() else { return };
    let delimiter = [b',', b'|', b';', b'\t', b'^', b'`'][usize::from(control % 6)];
    let chunk = usize::from(control / 6).max(1);
    let mut parser = crate::salesforce::csv_batches::PageParser::new(delimiter, 7, None);
    for piece in body.chunks(chunk) {
        if parser.feed(piece).is_err() {
            return;
        }
        parser.take_ready();
    }
    let _ = parser.finish();
}

/// A Pub/Sub event: a schema as `GetSchema` answers it, a NUL, then an Avro payload.
pub fn avro_event(data: &[u8]) {
    let Some(split) = data.iter().position(|&b| b == 0) else { return };
    let Ok(schema) = std::str::from_utf8(&data[..split]) else { return };
    let mut schemas = crate::salesforce::pubsub::decode::Schemas::default();
    if schemas.add("s", schema).is_ok() {
        let _ = schemas.decode("e", "s", &data[split + 1..]);
    }
}

/// A bus message: header lines (`Name: value`), a blank line, then the payload.
pub fn bus_message(data: &[u8]) {
    let (head, payload) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&data[..0], data),
    };
    let headers: crate::bus::Headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(n, v)| (n.to_string(), v.to_string())))
        .collect();
    if let Ok(part) = crate::bus::wire::Part::from_message(&headers, Bytes::copy_from_slice(payload), "m")
        && part.count == 1
    {
        let _ = crate::bus::wire::assemble(&[part], "subject");
    }
}

/// A record as the state store holds it, read as each record kind.
pub fn store_record(data: &[u8]) {
    use crate::store::record::decode;
    let _ = decode::<crate::run::RunRecord>(b"k", data);
    let _ = decode::<crate::run::Checkpoint>(b"k", data);
    let _ = decode::<crate::run::marks::FlowMarks>(b"k", data);
    let _ = decode::<crate::run::marks::JobRun>(b"k", data);
    let _ = decode::<crate::run::marks::ReplayId>(b"k", data);
    let _ = decode::<crate::run::Lease>(b"k", data);
}
