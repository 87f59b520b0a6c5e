//! Every input the fuzzers kept (`fuzz/corpus/<target>/`, seeds and all) through the same function
//! the fuzz target calls, on stable: what a fuzzer once found stays found.

use std::path::Path;

use bulkflow_engine::fuzz_entry;

fn run(target: &str, parse: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| parse(&bytes));
        assert!(outcome.is_ok(), "{target}: {} panics", path.display());
        files += 1;
    }
    assert!(files > 0, "{target}: an empty corpus");
}

#[test]
fn flow_file() {
    run("flow_file", fuzz_entry::flow_file);
}

#[test]
fn template() {
    run("template", fuzz_entry::template);
}

#[test]
fn bulk_csv() {
    run("bulk_csv", fuzz_entry::bulk_csv);
}

/// On a test thread's 2 MiB stack: the corpus holds recursive schemas (a record with a field of
/// its own type) that once overflowed it; `Schemas::add` now refuses them.
#[test]
fn avro_event() {
    run("avro_event", fuzz_entry::avro_event);
}

#[test]
fn bus_message() {
    run("bus_message", fuzz_entry::bus_message);
}

#[test]
fn store_record() {
    run("store_record", fuzz_entry::store_record);
}
