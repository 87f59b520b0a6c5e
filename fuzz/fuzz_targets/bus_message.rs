#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkflow_engine::fuzz_entry::bus_message(data));
