//! `--change-rate`: a background ticker that modifies and inserts records, so incremental windows
//! find something new.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::state::AppState;
use crate::store::persist::ChangeRecord;

const TICK: Duration = Duration::from_secs(1);

/// Each second applies `rate` modifications and `rate` inserts; fractions carry over to later ticks.
pub async fn run(app: Arc<AppState>, rate: f64, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(TICK);
    tick.tick().await; // the first tick is immediate; changes start a second in.
    let mut owed = 0.0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        owed += rate;
        let count = owed.floor();
        owed -= count;
        if count < 1.0 {
            continue;
        }
        // `count` is a whole, non-negative number of changes owed for this tick.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "floor of a small non-negative rate"
        )]
        let change = ChangeRecord { modifications: count as usize, inserts: count as usize, at: Utc::now() };
        let app = app.clone();
        let applied = tokio::task::spawn_blocking(move || {
            app.data.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply_changes(
                change.modifications,
                change.inserts,
                change.at,
            );
            if let Some(persist) = &app.persist
                && let Err(e) = persist.append_change(&change)
            {
                tracing::warn!(error = %e, "could not persist a data change");
            }
        })
        .await;
        if applied.is_err() {
            tracing::warn!("applying data changes panicked");
        }
    }
}
