//! `bulkflow validate`: exit 0 when every flow is sound (warnings allowed), 2 when any flow file is
//! invalid, 1 when something else failed (an unreadable folder, a bad config).

use std::process::ExitCode;

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub engine: GlobalArgs,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let config = args.engine.engine_config()?;
    let loaded = super::load_flows(&config)?;
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    if errors > 0 {
        eprintln!("invalid: {errors} error(s), {warnings} warning(s) in {}", config.workflows_dir.display());
        return Ok(ExitCode::from(2));
    }
    if loaded.flows.is_empty() {
        eprintln!("invalid: no flow files (*.yaml, *.yml) in {}", config.workflows_dir.display());
        return Ok(ExitCode::from(2));
    }
    for flow in &loaded.flows {
        println!("ok {} ({} tasks) {}", flow.name, flow.tasks.len(), flow.file.display());
    }
    println!("valid: {} flow(s), {warnings} warning(s)", loaded.flows.len());
    Ok(ExitCode::SUCCESS)
}
