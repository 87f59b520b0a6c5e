//! Opening the state store from the command line, with messages a user can act on.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bulkflow_engine::run::Ledger;
use bulkflow_engine::schedule::SystemClock;
use bulkflow_engine::store::SledStore;

/// The ledger of an existing state directory (read commands must not create one by mistake).
pub fn open_existing(dir: &Path) -> anyhow::Result<Ledger> {
    if !dir.exists() {
        anyhow::bail!("no state store at {} (set --state DIR to the engine's state directory)", dir.display());
    }
    open(dir)
}

pub fn open(dir: &Path) -> anyhow::Result<Ledger> {
    let store = SledStore::open(dir).with_context(|| format!("cannot open the state store at {}", dir.display()))?;
    Ok(Ledger::new(Arc::new(store), Arc::new(SystemClock)))
}
