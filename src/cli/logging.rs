//! Logs go to stderr (stdout is for results scripts read), human-readable or JSON, filtered by
//! RUST_LOG.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::LogFormat;

pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    finish(builder, format)
}

/// Logs into `file` (appended), for commands whose terminal shows progress instead: the demo.
pub fn init_file(format: LogFormat, file: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| anyhow::anyhow!("cannot open the log file {}: {e}", file.display()))?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::sync::Mutex::new(out)).with_ansi(false);
    finish(builder, format)
}

fn finish<W>(
    builder: tracing_subscriber::fmt::SubscriberBuilder<
        tracing_subscriber::fmt::format::DefaultFields,
        tracing_subscriber::fmt::format::Format,
        EnvFilter,
        W,
    >,
    format: LogFormat,
) -> anyhow::Result<()>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Warnings and errors also go to the control API's log tail.
    let ring = crate::control::logs::RingLayer(crate::control::logs::LogRing::global().clone());
    let result = match format {
        LogFormat::Human => builder.finish().with(ring).try_init(),
        LogFormat::Json => builder.json().finish().with(ring).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
