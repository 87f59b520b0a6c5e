//! The engine's recent warnings and errors, kept for the control API's `TailLogs`: a tracing
//! layer writes each into a bounded ring (what a client sees on connecting) and a broadcast (what
//! it sees afterwards). Bounded both ways, so a silent client or a log storm costs fixed memory.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use bulkflow_control_proto::LogLine;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Lines kept for a client that connects later.
const KEPT: usize = 200;

#[derive(Clone)]
pub struct LogRing(Arc<Inner>);

struct Inner {
    kept: Mutex<VecDeque<LogLine>>,
    live: broadcast::Sender<LogLine>,
}

impl Default for LogRing {
    fn default() -> Self {
        Self(Arc::new(Inner { kept: Mutex::new(VecDeque::with_capacity(KEPT)), live: broadcast::channel(KEPT).0 }))
    }
}

impl LogRing {
    /// The process's ring: logging fills it, the control API reads it.
    pub fn global() -> &'static LogRing {
        static RING: OnceLock<LogRing> = OnceLock::new();
        RING.get_or_init(LogRing::default)
    }

    pub fn push(&self, line: LogLine) {
        {
            let mut kept = self.0.kept.lock().unwrap_or_else(|p| p.into_inner());
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(line.clone());
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.0.live.send(line);
    }

    /// The lines kept so far and a receiver of the ones after them.
    pub fn subscribe(&self) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        let kept = self.0.kept.lock().unwrap_or_else(|p| p.into_inner());
        (kept.iter().cloned().collect(), self.0.live.subscribe())
    }
}

/// The layer that feeds a [`LogRing`] with WARN and ERROR events.
pub struct RingLayer(pub LogRing);

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.push(LogLine {
            at: chrono::Utc::now().timestamp_millis(),
            level: level.to_string(),
            target: event.metadata().target().to_owned(),
            message: fields.text,
        });
    }
}

/// `message key=value ...`, as the human log format writes them.
#[derive(Default)]
struct Fields {
    text: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let sep = if self.text.is_empty() { "" } else { " " };
        if field.name() == "message" {
            let _ = write!(self.text, "{sep}{value:?}");
        } else {
            let _ = write!(self.text, "{sep}{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let sep = if self.text.is_empty() { "" } else { " " };
        if field.name() == "message" {
            let _ = write!(self.text, "{sep}{value}");
        } else {
            let _ = write!(self.text, "{sep}{}={value}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn keeps_warnings_and_errors_only_and_at_most_the_bound() {
        let ring = LogRing::default();
        let subscriber = tracing_subscriber::registry().with(RingLayer(ring.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            tracing::warn!(flow = "a", "slow page");
            for i in 0..KEPT {
                tracing::error!(i, "failed");
            }
        });
        let (kept, _) = ring.subscribe();
        assert_eq!(kept.len(), KEPT);
        assert!(kept.iter().all(|l| l.level == "ERROR"), "the warning was pushed out by the bound");
        assert_eq!(kept.last().unwrap().message, format!("failed i={}", KEPT - 1));
        assert!(!kept.iter().any(|l| l.message.contains("not kept")));
    }
}
