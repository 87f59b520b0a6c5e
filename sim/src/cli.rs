//! `bulkflow sim ...`: the simulator's command line.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve a simulated Salesforce org until stopped.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for the REST API (OAuth, Bulk API 2.0, admin endpoint).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}

pub async fn run(command: SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Serve(_args) => anyhow::bail!("the simulator's server lands with issue 4"),
    }
}
