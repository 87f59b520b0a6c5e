//! Moves jobs along UploadComplete → InProgress → JobComplete (or Failed) on their schedule, and
//! removes terminal jobs once their retention is over.
//!
//! One clock for all jobs rather than a task per job: the schedule lives in each job's record, so it
//! survives a restart as is, and shutting the simulator down stops exactly one task.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::events::JobState;
use crate::state::{AppState, lock};

/// How often the clock looks at the jobs: fine enough that a 1 s latency is met within a few percent.
const TICK: Duration = Duration::from_millis(20);

/// Runs the clock; `_publishing` says the Pub/Sub server publishes the events it causes.
pub async fn run(app: Arc<AppState>, mut shutdown: watch::Receiver<bool>, _publishing: crate::pubsub::Publishing) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => advance(&app),
            _ = shutdown.changed() => return,
        }
    }
}

pub fn advance(app: &AppState) {
    let now = Utc::now();
    let retention = chrono::Duration::from_std(app.settings.retention).unwrap_or(chrono::Duration::MAX);
    let mut events = Vec::new();
    let mut expired = Vec::new();
    let mut jobs = lock(&app.jobs);
    for job in jobs.values_mut() {
        let r = &mut job.record;
        if r.state == JobState::UploadComplete && now >= r.in_progress_at {
            r.state = JobState::InProgress;
            r.system_modstamp = now;
            events.push(r.event());
        }
        if r.state == JobState::InProgress && now >= r.complete_at {
            let failure = match (&r.planned_failure, &job.results) {
                (Some(message), _) => Some(message.clone()),
                // Only when a restarted org could not read the job's stored results.
                (None, None) => Some(Some("Failed to write query result".to_string())),
                (None, Some(_)) => None,
            };
            r.system_modstamp = now;
            r.expires_at = Some(now + retention);
            match failure {
                Some(message) => {
                    r.state = JobState::Failed;
                    r.error_message = message;
                    job.results = None;
                    job.rendered = None;
                }
                None => r.state = JobState::JobComplete,
            }
            events.push(r.event());
        }
        if r.state.is_terminal() && r.expires_at.is_some_and(|at| now >= at) {
            expired.push(r.id.clone());
        }
    }
    for id in &expired {
        jobs.remove(id);
    }
    let changed = !events.is_empty() || !expired.is_empty();
    // Published before persisted (see `AppState::emit`), under the jobs lock so that no other
    // change is persisted in between.
    for event in events {
        tracing::info!(job = %event.job_id, state = ?event.state, "job state changed");
        app.emit(event);
    }
    if changed {
        app.persist_jobs(&jobs);
    }
    drop(jobs);
    if let Some(persist) = &app.persist {
        for id in expired {
            let _ = persist.delete_results(&id);
        }
    }
}
