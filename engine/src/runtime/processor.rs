//! The behaviour of a non-source task: take one event, emit zero or more. Emitting hands each
//! child its own copy with its own token; returning `Ok` finishes the input's token.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

use super::token::Token;
use crate::event::Event;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An event in flight, with the token that accounts for it.
#[derive(Debug)]
pub struct Envelope {
    pub event: Event,
    pub token: Token,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Worth another attempt (a timeout, a 5xx, a dropped connection).
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help (bad data, a rejected request): fail the event now.
    #[error("{0}")]
    Fatal(String),
}

/// The state store failing under a task: retrying the event cannot help (the store is local; an
/// error there is corruption or a full disk, which needs a person).
impl From<crate::run::LedgerError> for TaskError {
    fn from(e: crate::run::LedgerError) -> Self {
        TaskError::Fatal(format!("state store: {e}"))
    }
}

/// Salesforce failing under a task: retried when Salesforce says it may pass (the network, a
/// 5xx, a body cut short), not when the request itself is wrong.
impl From<crate::salesforce::SalesforceError> for TaskError {
    fn from(e: crate::salesforce::SalesforceError) -> Self {
        if e.is_retryable() { TaskError::Retryable(e.to_string()) } else { TaskError::Fatal(e.to_string()) }
    }
}

impl TaskError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }
}

pub trait Processor: Send + Sync + 'static {
    /// Handle one event. May be called again with the same event after a retryable error, so any
    /// effect must be idempotent or emitted only once everything that can fail has succeeded.
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>>;
}

/// Where a task's outputs go: to each child, each with a forked token. Sending waits when a
/// child's queue is full, which is how a slow branch pushes back on its parent.
pub struct Emitter {
    pub(crate) children: Vec<mpsc::Sender<Envelope>>,
    pub(crate) token: Option<Token>,
    pub(crate) emitted: usize,
}

impl Emitter {
    pub(crate) fn new(children: Vec<mpsc::Sender<Envelope>>, token: Token) -> Self {
        Self { children, token: Some(token), emitted: 0 }
    }

    pub async fn emit(&mut self, event: Event) -> Result<(), TaskError> {
        let Some(token) = &self.token else {
            return Err(TaskError::Fatal("emit after the input was finished".into()));
        };
        self.emitted += 1;
        for child in &self.children {
            let env = Envelope { event: event.clone(), token: token.fork() };
            if child.send(env).await.is_err() {
                // The child is gone: the engine is stopping. The forked token was dropped with the
                // envelope and counts as abandoned.
                return Err(TaskError::Retryable("downstream task stopped".into()));
            }
        }
        Ok(())
    }

    /// A copy of the input's token for work that finishes after `process` returns (an ack that
    /// arrives later): the source event is not complete until it is finished.
    pub fn defer(&self) -> Option<Token> {
        self.token.as_ref().map(Token::fork)
    }

    /// How many events this task emitted for its input so far.
    pub fn emitted(&self) -> usize {
        self.emitted
    }
}
