//! `bulkflow validate` as users run it: the seed passes, and every malformed flow under
//! `tests/fixtures/bad_flows/` fails with exit code 2 and the messages its `# expect:` lines list
//! (`# expect: LINE:COLUMN | KEY | MESSAGE-PREFIX`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .arg("validate")
        .args(args)
        .current_dir(repo())
        .env_remove("NATS_URL")
        .env_remove("GCS_BUCKET_PATH")
        .env_remove("GCP_PROJECT_ID")
        .env_remove("BULKFLOW_CONFIG")
        .output()
        .expect("run bulkflow")
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures/bad_flows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_seed_flows_are_valid() {
    let out = validate(&["--workflows", "workflows/seed", "--resources", "resources"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("valid: 3 flow(s)"), "{stdout}");
    // The seed reads NATS_URL, GCS_BUCKET_PATH and GCP_PROJECT_ID: unset, they are warned about.
    for var in ["NATS_URL", "GCS_BUCKET_PATH", "GCP_PROJECT_ID"] {
        assert!(
            stderr.contains("warning: key `flow.tasks[") && stderr.contains(&format!("`env.{var}` is not set")),
            "{var}: {stderr}"
        );
    }
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn every_bad_flow_fails_with_its_expected_messages() {
    let files = fixtures();
    assert!(files.len() >= 30, "only {} bad flow fixtures", files.len());
    for file in files {
        let rel = file.strip_prefix(repo()).unwrap().to_str().unwrap().to_string();
        let out = validate(&["--workflows", &rel, "--resources", "tests/fixtures/resources"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{rel}: {stderr}");
        assert!(!stderr.contains("panicked"), "{rel}: {stderr}");
        let text = std::fs::read_to_string(&file).unwrap();
        let expects: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        assert!(!expects.is_empty(), "{rel} has no `# expect:` line");
        let errors = stderr.lines().filter(|l| l.contains(": error: ")).count();
        assert_eq!(errors, expects.len(), "{rel}: expected {} errors, got:\n{stderr}", expects.len());
        for e in expects {
            let mut parts = e.splitn(3, " | ");
            let (at, key, message) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            let wanted = if key.is_empty() {
                format!("{rel}:{at}: error: {message}")
            } else {
                format!("{rel}:{at}: error: key `{key}`: {message}")
            };
            assert!(
                stderr.lines().any(|l| l.starts_with(&wanted)),
                "{rel}: wanted a line starting\n  {wanted}\ngot:\n{stderr}"
            );
        }
    }
}

#[test]
fn a_folder_of_bad_flows_reports_every_file() {
    let out = validate(&["--workflows", "tests/fixtures/bad_flows", "--resources", "tests/fixtures/resources"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    for file in fixtures() {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(stderr.contains(name), "{name} missing from:\n{stderr}");
    }
}

#[test]
fn a_missing_folder_is_a_failure_not_invalid_input() {
    let out = validate(&["--workflows", "no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read no/such/dir"), "{stderr}");
}

#[test]
fn config_file_and_environment_are_layered_under_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bulkflow.yaml");
    std::fs::write(
        &cfg,
        format!(
            "workflows_dir: {}\nresources_dir: {}\n",
            repo().join("tests/fixtures/bad_flows").display(),
            repo().join("resources").display()
        ),
    )
    .unwrap();
    // From the file: the bad flows.
    let out = validate(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // The flag wins over the file.
    let out = validate(&["--config", cfg.to_str().unwrap(), "--workflows", "workflows/seed"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // The environment wins over the file too.
    let out = Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .args(["validate", "--config", cfg.to_str().unwrap()])
        .env("BULKFLOW_WORKFLOWS_DIR", repo().join("workflows/seed"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // A bad config file is named with its line.
    std::fs::write(&cfg, "workflow_dir: x\n").unwrap();
    let out = validate(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "bulkflow.yaml:1:1: key `workflow_dir`: unknown key `workflow_dir` (did you mean `workflows_dir`?)"
        ),
        "{stderr}"
    );
}

/// Fault points are listed in every build, one `<stage>.<what>` per line; in a build without them,
/// asking for a crash is refused at start rather than silently ignored.
#[test]
#[cfg(not(feature = "failpoints"))]
fn fault_points_are_listed_and_arming_one_without_them_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_bulkflow")).args(["debug", "failpoints"]).output().unwrap();
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert!(names.len() >= 14, "{names:?}");
    for name in &names {
        let (stage, what) = name.split_once('.').unwrap_or_else(|| panic!("{name}"));
        let ok = |s: &str, dots: bool| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (dots && c == '.'))
        };
        assert!(ok(stage, false) && ok(what, true), "{name}");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .args(["validate", "--workflows", "workflows/seed", "--resources", "resources"])
        .current_dir(repo())
        .env("BULKFLOW_CRASH_AT", "lake.staged")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("BULKFLOW_CRASH_AT") && stderr.contains("--features failpoints"), "{stderr}");
}
