//! The `bulkflow` command. CLI only: every behaviour lives in the engine, simulator and UI crates.

mod cli;
mod control;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Armed before anything runs, so a crash can be asked for at any point of any command.
    match bulkflow_engine::fault::arm_from_env() {
        Ok(Some((point, hit))) => eprintln!("bulkflow: fault point {point} armed: SIGKILL on hit {hit}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("bulkflow: {e}");
            return ExitCode::from(2);
        }
    }
    match bulkflow_engine::fault::arm_errors_from_env() {
        Ok(points) => {
            for point in points {
                eprintln!("bulkflow: error point {point} armed: it fails while its file exists");
            }
        }
        Err(e) => {
            eprintln!("bulkflow: {e}");
            return ExitCode::from(2);
        }
    }
    let logs = match &cli.command {
        // The demo's terminal shows progress; its logs go to a file in its directory.
        Command::Demo(args) => cli::logging::init_file(cli.log_format, &cli::demo::log_file(args)),
        // The UI owns the terminal: the engine of `run --tui` logs to a file in its state.
        Command::Run(args) if args.tui => cli::logging::init_file(cli.log_format, &cli::run::log_file(args)),
        // The UI logs nothing of its own worth a line over its screen.
        Command::Tui(_) => Ok(()),
        _ => cli::logging::init(cli.log_format),
    };
    if let Err(e) = logs {
        eprintln!("bulkflow: {e}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bulkflow: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Validate(args) => cli::validate::run(args),
            Command::Run(args) => cli::run::run(args).await,
            Command::Runs(args) => cli::runs::run(args).await,
            Command::Flows(args) => cli::flows::run(args),
            Command::Demo(args) => cli::demo::run(args).await,
            Command::Export(args) => cli::export::run(args).await,
            Command::Tui(args) => cli::tui::run(args).await,
            Command::Sim(command) => bulkflow_sim::cli::run(command).await.map(|()| ExitCode::SUCCESS),
            Command::Debug(command) => Ok(cli::debug::run(command)),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bulkflow: {e:#}");
            ExitCode::from(1)
        }
    }
}
