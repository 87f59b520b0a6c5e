//! The task that starts a flow: a trigger or a subscription. It creates events, each with a token
//! whose outcome tells it when (and whether) to acknowledge.

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::processor::{BoxFuture, Envelope, TaskError};
use super::token::Token;
use crate::event::Event;

pub trait Source: Send + 'static {
    /// Run until `ctx.shutdown` fires. Call [`SourceContext::ready`] once listening, so triggers
    /// elsewhere wait for this source before they fire.
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), TaskError>>;
}

pub struct SourceContext {
    pub flow: String,
    pub task: String,
    pub shutdown: CancellationToken,
    pub(crate) outputs: Vec<mpsc::Sender<Envelope>>,
    pub(crate) ready: Option<oneshot::Sender<()>>,
    pub(crate) waits: Waits,
    /// Whether the state store takes writes: no event enters the flow while it does not.
    pub(crate) health: crate::store::StoreHealth,
}

/// What each source that cannot listen yet waits for (a bus not up, a server not reachable), by
/// flow: `/readyz` answers "not ready" with these while any is left, so a supervisor or an
/// operator sees a start order gone wrong instead of an engine that looks up and does nothing.
#[derive(Clone, Debug, Default)]
pub struct Waits(std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>);

impl Waits {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What `flow` waits for, if it waits.
    pub fn get(&self, flow: &str) -> Option<String> {
        self.lock().get(flow).cloned()
    }

    /// Each waiting flow with what it waits for.
    pub fn list(&self) -> Vec<(String, String)> {
        self.lock().iter().map(|(f, w)| (f.clone(), w.clone())).collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("flow `{0}` is stopping")]
pub struct Stopping(pub String);

impl SourceContext {
    /// Hand an event to the flow. Waits while the first tasks' queues are full, and while the
    /// state store cannot write (the event's work could not be recorded).
    pub async fn emit(&self, event: Event, token: Token) -> Result<(), Stopping> {
        if !self.store_writable().await {
            return Err(Stopping(self.flow.clone()));
        }
        for out in &self.outputs {
            let env = Envelope { event: event.clone(), token: token.fork() };
            if out.send(env).await.is_err() {
                return Err(Stopping(self.flow.clone()));
            }
        }
        token.complete();
        Ok(())
    }

    pub fn ready(&mut self) {
        self.listening();
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(());
        }
    }

    /// Says what this source waits for before it can listen (until [`SourceContext::listening`]).
    pub fn waiting(&self, why: String) {
        self.waits.lock().insert(self.flow.clone(), why);
    }

    /// Waits, saying why, while the state store cannot write; false if the flow stops meanwhile.
    pub async fn store_writable(&self) -> bool {
        let Some(why) = self.health.failing() else { return true };
        self.waiting(why);
        let writable = self.health.writable(&self.shutdown).await;
        self.listening();
        writable
    }

    /// The source listens (again): it waits for nothing.
    pub fn listening(&self) {
        self.waits.lock().remove(&self.flow);
    }
}
