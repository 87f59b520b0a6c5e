//! The live loop: the engine's changes in, keys in, frames out. The connection is kept by its
//! own task, which says "disconnected" and reconnects with backoff while the engine restarts.

use std::time::Duration;

use bulkflow_control_proto as pb;
use bulkflow_control_proto::client::{Address, Client, connect};
use ratatui::crossterm::event::{self, Event, KeyEvent};
use tokio::sync::mpsc;

use crate::app::{Action, App};
use crate::view::DetailView;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often flows (next tick, leader) are refreshed; runs come by the watch stream.
const FLOWS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("cannot use the terminal")]
    Terminal(#[from] std::io::Error),
}

enum Msg {
    Connected(Box<Client>),
    Disconnected(String),
    Changes(pb::RunChanges),
    Flows(pb::ListFlowsResponse),
    Log(pb::LogLine),
    Detail(Box<DetailView>),
    Note(String),
    Key(KeyEvent),
    Redraw,
}

/// What an action did, for the footer, and the detail a [`Action::Load`] fetched.
pub struct Outcome {
    pub note: String,
    pub detail: Option<DetailView>,
}

/// Carries out `action` against the engine.
pub async fn perform(client: &mut Client, action: &Action) -> Result<Outcome, tonic::Status> {
    let note = |note: String| Outcome { note, detail: None };
    match action {
        Action::Retry(id) => {
            let run = client.retry_run(pb::RunRef { id: id.clone() }).await?.into_inner();
            let attempts = crate::view::RunView::decode(run).map(|r| r.attempts).unwrap_or_default();
            Ok(note(format!("{id} retried (attempt {attempts})")))
        }
        Action::Cancel(id) => {
            let request = pb::CancelRunRequest { id: id.clone(), reason: "cancelled in `bulkflow tui`".into() };
            let r = client.cancel_run(request).await?.into_inner();
            Ok(note(match (r.job_id, r.abort_error) {
                (Some(job), Some(e)) => format!("{id} cancelled; job {job} not aborted: {e}"),
                _ => format!("{id} cancelled"),
            }))
        }
        Action::Load(id) => {
            let detail = client.get_run(pb::RunRef { id: id.clone() }).await?.into_inner();
            let detail = DetailView::decode(detail).map_err(|e| tonic::Status::internal(e.to_string()))?;
            Ok(Outcome { note: String::new(), detail: Some(detail) })
        }
        Action::Quit => Ok(note(String::new())),
    }
}

/// Runs the UI on this terminal until the operator quits.
pub async fn run(address: Address, token: Option<String>, read_only: bool) -> Result<(), TuiError> {
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    let feeder = tokio::spawn(feed(address.clone(), token, tx.clone()));
    let keys = tx.clone();
    // crossterm's reads block: a thread of their own. It ends with the process.
    std::thread::spawn(move || {
        loop {
            let msg = match event::read() {
                Ok(Event::Key(key)) => Msg::Key(key),
                Ok(Event::Resize(..)) => Msg::Redraw,
                Ok(_) => continue,
                Err(_) => return,
            };
            if keys.blocking_send(msg).is_err() {
                return;
            }
        }
    });
    // Not a terminal (output piped, no TTY): an error to report, not a panic.
    let mut terminal = ratatui::try_init()?;
    let mut app = App::new(address.to_string(), read_only);
    app.status = Some("connecting".into());
    let mut client: Option<Client> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        if let Err(e) = terminal.draw(|f| crate::render(f, &app)) {
            break Err(e.into());
        }
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = tick.tick() => Some(Msg::Redraw),
        };
        let Some(msg) = msg else { break Ok(()) };
        // Everything already queued is applied before the next frame: a burst costs one frame.
        let mut batch = vec![msg];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        let mut quit = false;
        for msg in batch {
            match msg {
                Msg::Connected(c) => {
                    client = Some(*c);
                    app.set_connected(true, None);
                }
                Msg::Disconnected(why) => {
                    client = None;
                    app.set_connected(false, Some(why));
                }
                Msg::Changes(c) => {
                    if let Err(e) = app.apply(c) {
                        app.message = Some(e.to_string());
                    }
                }
                Msg::Flows(f) => {
                    app.flows = f.flows;
                    app.store_error = f.store_error;
                }
                Msg::Log(l) => app.push_log(l),
                Msg::Detail(d) => app.set_detail(*d),
                Msg::Note(n) => app.message = Some(n),
                Msg::Redraw => app.tick(chrono::Utc::now()),
                Msg::Key(key) => {
                    app.message = None;
                    match app.on_key(key) {
                        Some(Action::Quit) => quit = true,
                        Some(action) => match &client {
                            Some(c) => {
                                let (mut c, tx) = (c.clone(), tx.clone());
                                tokio::spawn(async move {
                                    let msg = match perform(&mut c, &action).await {
                                        Ok(Outcome { detail: Some(d), .. }) => Msg::Detail(Box::new(d)),
                                        Ok(o) => Msg::Note(o.note),
                                        Err(s) => Msg::Note(s.message().to_owned()),
                                    };
                                    let _ = tx.send(msg).await;
                                });
                            }
                            None => app.message = Some("disconnected: not done".into()),
                        },
                        None => {}
                    }
                }
            }
        }
        if quit {
            break Ok(());
        }
    };
    feeder.abort();
    ratatui::restore();
    result
}

/// Keeps a connection: the watch stream, the log tail and the flows, until the engine goes away;
/// then says so and tries again.
async fn feed(address: Address, token: Option<String>, tx: mpsc::Sender<Msg>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let why = match connect(&address, token.as_deref()).await {
            Ok(client) => {
                let why = session(client, &tx).await;
                backoff = FIRST_BACKOFF;
                why
            }
            Err(e) => e.to_string(),
        };
        if tx.send(Msg::Disconnected(format!("{why}; reconnecting"))).await.is_err() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life; returns why it ended.
async fn session(mut client: Client, tx: &mpsc::Sender<Msg>) -> String {
    let mut watch = match client.watch_runs(pb::WatchRunsRequest {}).await {
        Ok(w) => w.into_inner(),
        Err(s) => return s.message().to_owned(),
    };
    let mut logs = client.tail_logs(pb::TailLogsRequest {}).await.ok().map(|l| l.into_inner());
    if tx.send(Msg::Connected(Box::new(client.clone()))).await.is_err() {
        return String::new();
    }
    let mut flows_every = tokio::time::interval(FLOWS_EVERY);
    loop {
        let msg = tokio::select! {
            m = watch.message() => match m {
                Ok(Some(changes)) => Msg::Changes(changes),
                Ok(None) => return "the engine stopped".into(),
                Err(s) => return s.message().to_owned(),
            },
            l = async { logs.as_mut()?.message().await.ok().flatten() }, if logs.is_some() => match l {
                Some(line) => Msg::Log(line),
                None => { logs = None; continue }
            },
            _ = flows_every.tick() => match client.list_flows(pb::ListFlowsRequest {}).await {
                Ok(f) => Msg::Flows(f.into_inner()),
                Err(s) => return s.message().to_owned(),
            },
        };
        if tx.send(msg).await.is_err() {
            return String::new();
        }
    }
}
