//! The demo's warehouse: a private PostgreSQL in `DIR/warehouse` (database `bulkflow`; the
//! writer flows create schema `salesforce` and one table per object), or off with the reason.

use anyhow::Context;
use bulkflow_pgserver::{PgError, PgServer};

use super::Layout;

pub enum Warehouse {
    On { url: String },
    Off { why: String },
}

pub const DATABASE: &str = "bulkflow";

/// Starts (or takes over, after a crash at any moment) the demo's PostgreSQL and writes its URL to
/// `DIR/warehouse.url`.
pub async fn start(layout: &Layout) -> Warehouse {
    let dir = layout.warehouse_data();
    let started = tokio::task::spawn_blocking(move || -> Result<String, PgError> {
        let server = PgServer::start(&dir)?;
        server.create_database(DATABASE)?;
        Ok(server.url(DATABASE))
    })
    .await;
    match started {
        Ok(Ok(url)) => match std::fs::write(layout.warehouse_url(), format!("{url}\n")) {
            Ok(()) => Warehouse::On { url },
            Err(e) => Warehouse::Off { why: format!("cannot write {}: {e}", layout.warehouse_url().display()) },
        },
        Ok(Err(e @ PgError::NotInstalled { .. })) => Warehouse::Off { why: format!("the PostgreSQL sink is off: {e}") },
        Ok(Err(e)) => Warehouse::Off { why: format!("the PostgreSQL sink is off: PostgreSQL did not start: {e}") },
        Err(e) => Warehouse::Off { why: format!("the PostgreSQL sink is off: {e}") },
    }
}

/// Stops the warehouse a previous demo left running; nothing to do when there is none.
pub fn stop(layout: &Layout) -> anyhow::Result<()> {
    let dir = layout.warehouse_data();
    if !dir.exists() {
        println!("no warehouse in {}", layout.dir.display());
        return Ok(());
    }
    bulkflow_pgserver::stop_dir(&dir).context("cannot stop the demo's warehouse")?;
    let _ = std::fs::remove_file(layout.warehouse_url());
    println!("warehouse stopped");
    Ok(())
}
