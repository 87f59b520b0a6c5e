//! `bulkflow tui`: the terminal UI, on the engine of this directory's state, of `--dir` (a demo
//! directory or a state directory), or at `--connect`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bulkflow_control_proto::client::Address;
use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct TuiArgs {
    #[command(flatten)]
    pub engine: GlobalArgs,
    /// A demo directory or a state directory: watch the engine running on it.
    #[arg(long, conflicts_with = "connect")]
    pub dir: Option<PathBuf>,
    /// The control API's address: HOST:PORT (as the engine's --control-listen) or a socket path.
    #[arg(long)]
    pub connect: Option<String>,
    /// Watch only: retry and cancel are off.
    #[arg(long)]
    pub read_only: bool,
}

/// The socket of a state directory, or of a demo directory's state. A directory with neither yet
/// still names one: the UI waits for its engine to start.
pub fn socket_in(dir: &Path) -> PathBuf {
    let own = crate::control::socket_path(dir);
    let demo = crate::control::socket_path(&dir.join("state"));
    if own.exists() || (!demo.exists() && !dir.join("state").is_dir()) { own } else { demo }
}

pub async fn run(args: TuiArgs) -> anyhow::Result<ExitCode> {
    let config = args.engine.engine_config()?;
    let address = match (&args.connect, &args.dir) {
        (Some(addr), _) => Address::parse(addr),
        (None, Some(dir)) => Address::Unix(socket_in(dir)),
        (None, None) => Address::Unix(crate::control::socket_path(&config.state_dir)),
    };
    let token = super::runs_api::client_token(&config)?;
    bulkflow_tui::run(address, token, args.read_only).await?;
    Ok(ExitCode::SUCCESS)
}
