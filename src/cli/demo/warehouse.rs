//! The demo's warehouse: a private PostgreSQL in `DIR/warehouse`, or off with the reason.

use super::Layout;

#[expect(dead_code, reason = "`On` arrives with the PostgreSQL launcher (issue #9)")]
pub enum Warehouse {
    On { url: String },
    Off { why: String },
}

/// Starts (or takes over) the demo's PostgreSQL and writes its URL to `DIR/warehouse.url`.
pub async fn start(_layout: &Layout) -> Warehouse {
    Warehouse::Off { why: "the PostgreSQL launcher is not built into this version yet".into() }
}

/// Stops the warehouse a previous demo left running; nothing to do when there is none.
pub fn stop(_layout: &Layout) -> anyhow::Result<()> {
    Ok(())
}
