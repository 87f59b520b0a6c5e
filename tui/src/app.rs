//! The UI's state and what each key does to it: pure, so tests drive it without a terminal or
//! an engine. The client loop feeds it the engine's changes and carries out the [`Action`]s.

use std::collections::{HashMap, VecDeque};

use bulkflow_control_proto as pb;
use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::view::{DetailView, RunView, state_rank};

/// Log lines kept for the log pane.
const LOG_LINES: usize = 100;

/// What the client loop must do for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Retry(String),
    Cancel(String),
    /// Fetch a run's detail (checkpoints) for the detail view.
    Load(String),
    Quit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Run,
    Flow,
    Object,
    State,
    Progress,
    Age,
    Attempts,
}

impl Column {
    pub const ALL: [Column; 7] =
        [Column::Run, Column::Flow, Column::Object, Column::State, Column::Progress, Column::Age, Column::Attempts];

    pub fn title(self) -> &'static str {
        match self {
            Column::Run => "RUN",
            Column::Flow => "FLOW",
            Column::Object => "OBJECT",
            Column::State => "STATE",
            Column::Progress => "PROGRESS",
            Column::Age => "AGE",
            Column::Attempts => "ATT",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Table,
    /// The detail of the run with this id.
    Detail(String),
    Help,
    /// Typing the filter.
    Filter,
    /// Waiting for `y` to carry out the action.
    Confirm(Action),
}

#[derive(Debug)]
pub struct App {
    /// What the title names: the engine's address.
    pub target: String,
    pub connected: bool,
    /// Why the connection is down, shown while disconnected.
    pub status: Option<String>,
    pub read_only: bool,
    pub mode: Mode,
    pub runs: HashMap<String, RunView>,
    pub flows: Vec<pb::Flow>,
    /// Why the engine's state store cannot write, while it cannot (it takes no new work then).
    pub store_error: Option<String>,
    pub logs: VecDeque<pb::LogLine>,
    pub detail: Option<DetailView>,
    pub filter: String,
    pub sort: Column,
    pub descending: bool,
    /// The selected row of `visible`.
    pub selected: usize,
    /// Ids of the runs the table shows, filtered and sorted: recomputed on change, not per frame.
    visible: Vec<String>,
    /// The clock ages are computed against; the loop sets it each tick.
    pub now: DateTime<Utc>,
    /// A one-line note for the operator (an action's result).
    pub message: Option<String>,
    /// Lines the detail view is scrolled down by.
    pub detail_scroll: u16,
}

impl App {
    pub fn new(target: impl Into<String>, read_only: bool) -> App {
        App {
            target: target.into(),
            connected: false,
            status: None,
            read_only,
            mode: Mode::Table,
            runs: HashMap::new(),
            flows: Vec::new(),
            store_error: None,
            logs: VecDeque::new(),
            detail: None,
            filter: String::new(),
            sort: Column::Run,
            descending: true,
            selected: 0,
            visible: Vec::new(),
            now: Utc::now(),
            message: None,
            detail_scroll: 0,
        }
    }

    pub fn visible(&self) -> &[String] {
        &self.visible
    }

    pub fn selected_run(&self) -> Option<&RunView> {
        self.visible.get(self.selected).and_then(|id| self.runs.get(id))
    }

    /// Applies a watch message: a snapshot replaces the view, otherwise runs are updated in place.
    pub fn apply(&mut self, changes: pb::RunChanges) -> Result<(), crate::view::DecodeError> {
        let selected = self.selected_run().map(|r| r.id().to_owned());
        if changes.snapshot {
            self.runs.clear();
        }
        for run in changes.upserts {
            let view = RunView::decode(run)?;
            if let Some(d) = &mut self.detail
                && d.run.id() == view.id()
            {
                d.run = view.clone();
            }
            self.runs.insert(view.id().to_owned(), view);
        }
        for id in changes.removed {
            self.runs.remove(&id);
        }
        self.refresh(selected);
        Ok(())
    }

    pub fn set_connected(&mut self, connected: bool, status: Option<String>) {
        self.connected = connected;
        self.status = status;
    }

    pub fn push_log(&mut self, line: pb::LogLine) {
        if self.logs.len() == LOG_LINES {
            self.logs.pop_front();
        }
        self.logs.push_back(line);
    }

    /// Recomputes the visible rows, keeping the selection on the same run when it is still shown.
    fn refresh(&mut self, keep: Option<String>) {
        let filter = Filter::parse(&self.filter);
        let mut rows: Vec<&RunView> = self.runs.values().filter(|r| filter.matches(r)).collect();
        let now = self.now;
        rows.sort_by(|a, b| {
            let order = match self.sort {
                Column::Run => a.scheduled_at.cmp(&b.scheduled_at),
                Column::Flow => a.flow.cmp(&b.flow),
                Column::Object => a.object.cmp(&b.object),
                Column::State => state_rank(a.state()).cmp(&state_rank(b.state())),
                Column::Progress => a.progress.records.cmp(&b.progress.records),
                Column::Age => (now - a.created_at).cmp(&(now - b.created_at)),
                Column::Attempts => a.attempts.cmp(&b.attempts),
            };
            // Ties by id, so rows never swap places between frames.
            let order = order.then_with(|| a.id().cmp(b.id()));
            if self.descending { order.reverse() } else { order }
        });
        self.visible = rows.into_iter().map(|r| r.id().to_owned()).collect();
        self.selected = keep
            .and_then(|id| self.visible.iter().position(|v| *v == id))
            .unwrap_or(self.selected)
            .min(self.visible.len().saturating_sub(1));
    }

    fn keep_selection(&mut self) {
        let selected = self.selected_run().map(|r| r.id().to_owned());
        self.refresh(selected);
    }

    /// What `key` does; the [`Action`] the loop must carry out, if any.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Table;
                None
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter => self.mode = Mode::Table,
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Table;
                    }
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) => self.filter.push(c),
                    _ => {}
                }
                self.keep_selection();
                None
            }
            Mode::Confirm(action) => {
                self.mode = if self.detail.is_some() {
                    Mode::Detail(self.detail.as_ref().map(|d| d.run.id().to_owned()).unwrap_or_default())
                } else {
                    Mode::Table
                };
                match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => Some(action),
                    _ => {
                        self.message = Some("not done".into());
                        None
                    }
                }
            }
            Mode::Detail(id) => match key.code {
                KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => {
                    self.mode = Mode::Table;
                    self.detail = None;
                    None
                }
                KeyCode::Char('q') => Some(Action::Quit),
                KeyCode::Down | KeyCode::Char('j') => {
                    self.detail_scroll = self.detail_scroll.saturating_add(1);
                    None
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.detail_scroll = self.detail_scroll.saturating_sub(1);
                    None
                }
                KeyCode::Char('?') => {
                    self.mode = Mode::Help;
                    None
                }
                KeyCode::Char('r') => self.confirm(Action::Retry(id)),
                KeyCode::Char('c') => self.confirm(Action::Cancel(id)),
                _ => None,
            },
            Mode::Table => self.on_table_key(key),
        }
    }

    fn on_table_key(&mut self, key: KeyEvent) -> Option<Action> {
        let last = self.visible.len().saturating_sub(1);
        match key.code {
            KeyCode::Char('q') => return Some(Action::Quit),
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Esc => {
                self.filter.clear();
                self.keep_selection();
            }
            KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::PageDown => self.selected = (self.selected + 10).min(last),
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = last,
            KeyCode::Char('s') => {
                let i = Column::ALL.iter().position(|c| *c == self.sort).unwrap_or(0);
                self.sort = Column::ALL[(i + 1) % Column::ALL.len()];
                self.keep_selection();
            }
            KeyCode::Char('S') => {
                self.descending = !self.descending;
                self.keep_selection();
            }
            KeyCode::Enter => {
                let id = self.selected_run()?.id().to_owned();
                self.detail = Some(DetailView { run: self.runs[&id].clone(), checkpoints: Vec::new() });
                self.mode = Mode::Detail(id.clone());
                self.detail_scroll = 0;
                return Some(Action::Load(id));
            }
            KeyCode::Char('r') => return self.confirm(Action::Retry(self.selected_run()?.id().to_owned())),
            KeyCode::Char('c') => return self.confirm(Action::Cancel(self.selected_run()?.id().to_owned())),
            _ => {}
        }
        None
    }

    /// Asks before a change, unless the UI is read-only (then it only says so).
    fn confirm(&mut self, action: Action) -> Option<Action> {
        if self.read_only {
            self.message = Some("read-only: retry and cancel are off".into());
        } else {
            self.mode = Mode::Confirm(action);
        }
        None
    }

    /// The detail the loop fetched for [`Action::Load`]; ignored if the operator moved on.
    pub fn set_detail(&mut self, detail: DetailView) {
        if self.mode == Mode::Detail(detail.run.id().to_owned()) || matches!(self.mode, Mode::Confirm(_)) {
            self.detail = Some(detail);
        }
    }

    /// Sets the clock (for ages), and re-sorts when the order depends on it.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        self.now = now;
        if self.sort == Column::Age {
            self.keep_selection();
        }
    }
}

/// `/` filter: `flow:X`, `object:X`, `state:X` terms, and free text matched against the run's id,
/// state, object and error; every term must match (case-insensitive).
struct Filter {
    terms: Vec<(Option<String>, String)>,
}

impl Filter {
    fn parse(text: &str) -> Filter {
        let terms = text
            .split_whitespace()
            .map(|t| match t.split_once(':') {
                Some((k @ ("flow" | "object" | "state"), v)) => (Some(k.to_owned()), v.to_lowercase()),
                _ => (None, t.to_lowercase()),
            })
            .collect();
        Filter { terms }
    }

    fn matches(&self, run: &RunView) -> bool {
        self.terms.iter().all(|(key, value)| {
            let has = |s: &str| s.to_lowercase().contains(value.as_str());
            match key.as_deref() {
                Some("flow") => has(&run.flow),
                Some("object") => run.object.as_deref().is_some_and(has),
                Some("state") => has(run.state()),
                _ => {
                    has(run.id())
                        || has(run.state())
                        || run.object.as_deref().is_some_and(has)
                        || run.last_error.as_deref().is_some_and(has)
                }
            }
        })
    }
}
