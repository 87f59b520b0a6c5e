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
}

#[derive(Debug, thiserror::Error)]
#[error("flow `{0}` is stopping")]
pub struct Stopping(pub String);

impl SourceContext {
    /// Hand an event to the flow. Waits while the first tasks' queues are full.
    pub async fn emit(&self, event: Event, token: Token) -> Result<(), Stopping> {
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
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(());
        }
    }
}
