//! The `bulkflow` command. CLI only: every behaviour lives in the engine, simulator and UI crates.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bulkflow", version, about = "Durable, incremental Salesforce Bulk API exports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The Salesforce simulator.
    #[command(subcommand)]
    Sim(bulkflow_sim::cli::SimCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(command) => bulkflow_sim::cli::run(command).await,
    }
}
