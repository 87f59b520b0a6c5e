//! `bulkflow debug ...`: what an operator or a test needs to see inside the build.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Every fault point's name, one per line (`BULKFLOW_CRASH_AT` takes one, in a build with
    /// `--features failpoints`).
    Failpoints,
}

pub fn run(command: DebugCommand) -> ExitCode {
    match command {
        DebugCommand::Failpoints => {
            for (name, _) in bulkflow_engine::fault::POINTS {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
    }
}
