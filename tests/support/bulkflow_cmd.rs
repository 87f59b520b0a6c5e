//! The `bulkflow` binary on a project laid out as `wf/` (flows), `res/` (resources) and `state/`
//! in a test's directory, with nothing from the caller's environment that would change it.
//! Included with `#[path = "support/bulkflow_cmd.rs"] mod bulkflow_cmd;`.

use std::path::Path;
use std::process::Command;

/// `bulkflow SUBCOMMAND... --workflows wf --resources res --state state`, run in `dir`.
pub fn bulkflow(dir: &Path, sub: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkflow"));
    cmd.current_dir(dir)
        .args(sub)
        .args(["--workflows", "wf", "--resources", "res", "--state", "state"])
        .env("RUST_LOG", "info")
        .env_remove("BULKFLOW_CONFIG")
        .env_remove("BULKFLOW_CONTROL_TOKEN");
    cmd
}
