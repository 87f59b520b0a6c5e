//! Changing the org's data: the `--change-rate`/`--delete-rate` ticker, and the one place every
//! change (the ticker's, `/__sim/changes`, `/__sim/delete`, `/__sim/purge`) is applied and
//! persisted, so a restarted org replays exactly what happened.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::state::AppState;
use crate::store::persist::ChangeRecord;

const TICK: Duration = Duration::from_secs(1);

/// Per second: `change` modifications and `change` inserts; `delete` deletes.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub change: f64,
    pub delete: f64,
}

/// Applies `change` to the org and appends it to the persisted change log. Returns the ids it
/// deleted. Blocking: call it from a blocking task.
pub fn apply(app: &AppState, change: ChangeRecord) -> Result<Vec<String>, String> {
    let mut data = app.data.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let deleted = data.apply(change.batch());
    // Persisted under the data lock, so the log's order is the order the changes were applied.
    if let Some(persist) = &app.persist {
        persist.append_change(&change).map_err(|e| format!("could not persist a data change: {e}"))?;
    }
    Ok(deleted)
}

/// [`apply`] on a blocking thread.
pub async fn apply_async(app: Arc<AppState>, change: ChangeRecord) -> Result<Vec<String>, String> {
    tokio::task::spawn_blocking(move || apply(&app, change))
        .await
        .unwrap_or_else(|_| Err("applying data changes panicked".into()))
}

/// Whole changes owed by a rate, carrying the fraction over to later ticks.
#[derive(Default)]
struct Owed(f64);

impl Owed {
    fn take(&mut self, rate: f64) -> usize {
        self.0 += rate;
        let count = self.0.floor();
        self.0 -= count;
        // `count` is a whole, non-negative number of changes owed for this tick.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "floor of a small non-negative rate"
        )]
        let count = count as usize;
        count
    }
}

pub async fn run(app: Arc<AppState>, rates: Rates, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(TICK);
    tick.tick().await; // the first tick is immediate; changes start a second in.
    let (mut changes, mut deletes) = (Owed::default(), Owed::default());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (count, deleting) = (changes.take(rates.change), deletes.take(rates.delete));
        if count == 0 && deleting == 0 {
            continue;
        }
        let change = ChangeRecord {
            modifications: count,
            inserts: count,
            deletes: deleting,
            at: Utc::now(),
            ..Default::default()
        };
        if let Err(e) = apply_async(app.clone(), change).await {
            tracing::warn!(error = %e, "data change");
        }
    }
}
