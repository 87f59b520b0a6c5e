//! `bulkflow run` as a child process until its log says it got somewhere, then a polite stop.
//! Included with `#[path = "support/engine_run.rs"] mod engine_run;`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Spawns `engine` (a `bulkflow run` command) with its stderr in `log`, calls `during` once it
/// started, waits until the log satisfies `done` (failing after `within`, or if the engine exits
/// first), then SIGTERMs it, asserts it stopped cleanly, and returns the log.
pub fn run_until(
    mut engine: Command,
    log: &Path,
    within: Duration,
    done: impl Fn(&str) -> bool,
    during: impl FnOnce(&Path),
) -> String {
    let mut child = engine.stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap();
    during(log);
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if done(&text) {
            break;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the engine did not get there in time; its log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success(), "the engine did not stop cleanly");
    std::fs::read_to_string(log).unwrap()
}
