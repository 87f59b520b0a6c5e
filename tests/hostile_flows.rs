//! `bulkflow validate` against hostile flow files, as an outside check runs it: each is answered
//! with exit 2 (bad input) and a message naming the file and a line and column, within 10 s and
//! in 1 GiB of address space, never a panic. A byte-order mark or CRLF line endings in an
//! otherwise valid file are not errors. The semantic mistakes are in `fixtures/bad_flows/`
//! (`tests/validate.rs`); these are the ones that attack the reader itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `bulkflow validate --workflows FILE` under `ulimit -v 1GiB`, and how long it took.
fn validate(file: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new("sh")
        .args(["-c", "ulimit -v 1048576 && exec \"$0\" validate --workflows \"$1\" --resources \"$2\""])
        .arg(env!("CARGO_BIN_EXE_bulkflow"))
        .arg(file)
        .arg(repo().join("resources"))
        .env_remove("BULKFLOW_CONFIG")
        .output()
        .unwrap();
    (output, started.elapsed())
}

fn seed_flow() -> String {
    std::fs::read_to_string(repo().join("workflows/seed/salesforce_bulkapi_query_account.yaml")).unwrap()
}

/// The seed's listener asking for a billion rows a batch.
fn huge_batches() -> Vec<u8> {
    let listener = std::fs::read_to_string(repo().join("workflows/seed/salesforce_bulkapi_job_listener.yaml")).unwrap();
    assert!(listener.contains("batch_size: 10000"));
    listener.replace("batch_size: 10000", "batch_size: 1000000000").into_bytes()
}

/// The hostile files: name, bytes.
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let mut bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
    for (p, q) in "abcdefgh".chars().zip("bcdefghi".chars()) {
        bomb.push_str(&format!("{q}: &{q} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"));
    }
    let flow_bomb = format!("{}  tasks: *i\n", bomb.replace('\n', "\n  ").replacen("a:", "flow:\n  name: x\n  a:", 1));
    let mut garbage = Vec::with_capacity(4096);
    let mut x: u32 = 0x2545_f491;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        garbage.push(x.to_le_bytes()[0]);
    }
    let wide: String = (0..200_000).map(|i| format!("  k{i}: {i}\n")).collect();
    vec![
        ("empty.yaml", Vec::new()),
        ("only_a_comment.yaml", b"# nothing here\n".to_vec()),
        ("tabs.yaml", b"flow:\n\tname: x\n".to_vec()),
        ("alias_bomb.yaml", bomb.into_bytes()),
        ("alias_bomb_inside_the_flow.yaml", flow_bomb.into_bytes()),
        ("unknown_alias.yaml", b"flow:\n  name: *nowhere\n".to_vec()),
        ("merge_keys.yaml", b"base: &b {name: x}\nflow:\n  <<: *b\n".to_vec()),
        ("duplicate_keys.yaml", b"flow:\n  name: a\n  name: b\n  tasks: []\n".to_vec()),
        (
            "huge_number.yaml",
            format!("flow:\n  name: x\n  require_leader_election: 1{}\n", "0".repeat(400)).into_bytes(),
        ),
        ("deep_nesting.yaml", format!("flow: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
        ("deep_maps.yaml", (1..3000).map(|i| format!("{}a{i}:\n", "  ".repeat(i))).collect::<String>().into_bytes()),
        ("ten_mb_string.yaml", format!("flow:\n  name: \"{}\"\n  tasks: []\n", "x".repeat(10_000_000)).into_bytes()),
        ("wide_map.yaml", format!("flow:\n{wide}").into_bytes()),
        ("invalid_utf8.yaml", b"flow:\n  name: caf\xe9\n".to_vec()),
        ("binary_garbage.yaml", garbage),
        ("nul_bytes.yaml", b"flow:\n  name: \x00\x00\n".to_vec()),
        ("two_documents.yaml", format!("{}---\n{}", seed_flow(), seed_flow()).into_bytes()),
        ("a_list_not_a_map.yaml", b"- flow: x\n".to_vec()),
        ("a_bare_scalar.yaml", b"just words\n".to_vec()),
        ("unclosed_quote.yaml", b"flow:\n  name: \"x\n".to_vec()),
        ("unclosed_flow_seq.yaml", b"flow: [a, b\n".to_vec()),
        ("bad_indentation.yaml", b"flow:\n  name: x\n tasks: []\n".to_vec()),
        ("tags.yaml", b"flow: !!binary aGVsbG8=\n".to_vec()),
        ("complex_key.yaml", b"? [a, b]\n: c\n".to_vec()),
        ("over_16_mib.yaml", vec![b'#'; 17 << 20]),
        ("huge_batch_size.yaml", huge_batches()),
    ]
}

#[test]
fn every_hostile_flow_file_is_refused_with_exit_2_naming_its_place_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let files = hostile();
    let bad_flows = std::fs::read_dir(repo().join("tests/fixtures/bad_flows")).unwrap().count();
    assert!(files.len() + bad_flows >= 40, "a corpus of at least 40 malformed flows");
    for (name, bytes) in files {
        let file = dir.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        let (out, took) = validate(&file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(took < Duration::from_secs(10), "{name}: {took:?}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let placed = format!("{}:", file.display());
        let line = stderr.lines().find(|l| l.starts_with(&placed)).unwrap_or_else(|| panic!("{name}: {stderr}"));
        let place: Vec<&str> = line[placed.len()..].splitn(3, ':').collect();
        assert!(
            place.len() == 3 && place[0].parse::<u32>().is_ok() && place[1].parse::<u32>().is_ok(),
            "{name}: the error names line and column: {line}"
        );
    }
}

#[test]
fn a_byte_order_mark_or_crlf_line_endings_are_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_flow();
    for (name, text) in [
        ("bom.yaml", format!("\u{feff}{seed}")),
        ("crlf.yaml", seed.replace('\n', "\r\n")),
        ("bom_and_crlf.yaml", format!("\u{feff}{}", seed.replace('\n', "\r\n"))),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let (out, _) = validate(&file);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn the_reason_is_named_for_the_readers_own_bounds() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, expected) in [
        ("bomb.yaml", hostile()[3].1.clone(), "expand the document past 100000 nodes"),
        ("utf8.yaml", b"flow:\n  name: caf\xe9\n".to_vec(), ":2:12: error: the file is not UTF-8 text: byte 0xe9"),
        ("big.yaml", vec![b'#'; 17 << 20], "a flow file is at most 16777216"),
        (
            "batches.yaml",
            huge_batches(),
            ":53:21: error: key `flow.tasks[5].salesforce_bulkapi_query_job.batch_size`: `batch_size: 1000000000` is past the limit of 1000000 rows",
        ),
    ] {
        let file: PathBuf = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let (out, _) = validate(&file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

/// A directory of more flow files than an engine loads (10,000) is refused as a whole, naming it.
#[test]
fn a_directory_of_too_many_flow_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..10_001 {
        std::fs::write(dir.path().join(format!("f{i}.yaml")), "flow: {}\n").unwrap();
    }
    let (out, took) = validate(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let expected = format!("{}:1:1: error: the directory holds 10001 flow files; at most 10000", dir.path().display());
    assert!(stderr.contains(&expected), "{stderr}");
}
