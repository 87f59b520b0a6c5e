//! Completion tracking. A source event is complete when every copy of it has reached a leaf or been
//! filtered out; only then may its source acknowledge it. Each in-flight copy holds one [`Token`];
//! forking a token (fan-out, a task emitting several events) adds a copy to wait for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How a source event's journey ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every copy reached a leaf or was filtered out.
    Completed,
    /// A task gave up on a copy after its retries; the first error is kept.
    Failed { task: String, error: String },
    /// The engine stopped with copies still in flight: neither acknowledge nor reject, so the event
    /// is delivered again after a restart.
    Abandoned,
}

type OnDone = Box<dyn FnOnce(Outcome) + Send>;

struct Shared {
    pending: AtomicUsize,
    failure: Mutex<Option<(String, String)>>,
    abandoned: std::sync::atomic::AtomicBool,
    on_done: Mutex<Option<OnDone>>,
}

impl Shared {
    fn release(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let outcome = match self.failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some((task, error)) => Outcome::Failed { task, error },
            None if self.abandoned.load(Ordering::Acquire) => Outcome::Abandoned,
            None => Outcome::Completed,
        };
        if let Some(cb) = self.on_done.lock().unwrap_or_else(|p| p.into_inner()).take() {
            cb(outcome);
        }
    }
}

/// One in-flight copy of a source event. Finish it with [`Token::complete`] or [`Token::fail`];
/// dropping it unfinished counts as abandoned.
pub struct Token {
    shared: Arc<Shared>,
    finished: bool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("pending", &self.shared.pending.load(Ordering::Relaxed)).finish()
    }
}

impl Token {
    /// A token for a new source event; `on_done` runs exactly once, when the last copy finishes.
    pub fn new(on_done: impl FnOnce(Outcome) + Send + 'static) -> Self {
        Self {
            shared: Arc::new(Shared {
                pending: AtomicUsize::new(1),
                failure: Mutex::new(None),
                abandoned: std::sync::atomic::AtomicBool::new(false),
                on_done: Mutex::new(Some(Box::new(on_done))),
            }),
            finished: false,
        }
    }

    /// Another copy to wait for.
    pub fn fork(&self) -> Self {
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        Self { shared: self.shared.clone(), finished: false }
    }

    pub fn complete(mut self) {
        self.finished = true;
        self.shared.release();
    }

    pub fn fail(mut self, task: &str, error: String) {
        self.finished = true;
        {
            let mut f = self.shared.failure.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some((task.to_string(), error));
            }
        }
        self.shared.release();
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.abandoned.store(true, Ordering::Release);
            self.shared.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn tracked() -> (Token, mpsc::Receiver<Outcome>) {
        let (tx, rx) = mpsc::channel();
        (Token::new(move |o| tx.send(o).unwrap()), rx)
    }

    #[test]
    fn completes_only_after_every_fork() {
        let (t, rx) = tracked();
        let a = t.fork();
        let b = t.fork();
        t.complete();
        a.complete();
        assert!(rx.try_recv().is_err());
        b.complete();
        assert_eq!(rx.try_recv().unwrap(), Outcome::Completed);
    }

    #[test]
    fn the_first_failure_wins_and_waits_for_the_rest() {
        let (t, rx) = tracked();
        let a = t.fork();
        t.fail("x", "boom".into());
        assert!(rx.try_recv().is_err());
        a.complete();
        assert_eq!(rx.try_recv().unwrap(), Outcome::Failed { task: "x".into(), error: "boom".into() });
    }

    #[test]
    fn dropping_unfinished_is_abandoned() {
        let (t, rx) = tracked();
        let a = t.fork();
        t.complete();
        drop(a);
        assert_eq!(rx.try_recv().unwrap(), Outcome::Abandoned);
    }
}
