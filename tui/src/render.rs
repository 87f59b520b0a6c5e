//! Drawing the [`App`]: a pure function of the state, so a frame is cheap (only the rows on
//! screen are built) and tests render it to a `TestBackend`.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use crate::app::{Action, App, Column, Mode};
use crate::view::{RunView, age};

/// Below this width the table drops the window and object columns and the per-sink batches (they
/// need 137 columns, and the flow's name some more).
const WIDE: u16 = 150;
/// `1990-01-01 00:00 → 11-25 07:00`: a backfill's window, the longest.
const WINDOW_WIDTH: u16 = 30;

pub const KEYS: [(&str, &str); 13] = [
    ("↑↓ j k", "select a run"),
    ("PgUp PgDn g G", "page, first, last"),
    ("Enter", "open the run's detail (↑↓ scroll it)"),
    ("Esc", "back; clear the filter"),
    ("/", "filter: flow:X object:X state:X or text"),
    ("s", "sort by the next column"),
    ("S", "reverse the sort"),
    ("r", "retry the run (asks first)"),
    ("c", "cancel the run (asks first)"),
    ("y / n", "confirm / refuse"),
    ("?", "this help"),
    ("q", "quit"),
    ("Ctrl-C", "quit"),
];

pub fn state_style(state: &str) -> Style {
    let color = match state {
        "failed" => Color::Red,
        "cancelled" => Color::DarkGray,
        "written" | "completed" => Color::Green,
        "scheduled" => Color::Blue,
        _ => Color::Yellow,
    };
    Style::new().fg(color)
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    // A quarter of the screen at most, so the runs keep the most room.
    let flows_height = (app.flows.len() as u16 + 3).clamp(4, (area.height / 4).max(4));
    let [title, body, flows, logs, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(flows_height),
        Constraint::Length(5),
        Constraint::Length(1),
    ])
    .areas(area);
    render_title(frame, app, title);
    match (&app.mode, &app.detail) {
        (Mode::Detail(_), Some(_)) | (Mode::Confirm(_), Some(_)) => render_detail(frame, app, body),
        _ => render_runs(frame, app, body),
    }
    render_flows(frame, app, flows);
    render_logs(frame, app, logs);
    render_footer(frame, app, footer);
    match &app.mode {
        Mode::Help => render_help(frame, area),
        Mode::Confirm(action) => render_confirm(frame, action, area),
        _ => {}
    }
}

fn render_title(frame: &mut Frame, app: &App, area: Rect) {
    let connection = if app.connected {
        Span::styled("connected", Style::new().fg(Color::Green))
    } else {
        Span::styled("disconnected", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD))
    };
    let mut spans = vec![Span::styled("bulkflow ", Style::new().add_modifier(Modifier::BOLD)), connection];
    // While disconnected, why comes first: it is what the operator needs to read.
    if !app.connected
        && let Some(status) = &app.status
    {
        spans.push(Span::raw(format!(" ({status})")));
    }
    spans.push(Span::raw(format!("  {}/{} runs  {}", app.visible().len(), app.runs.len(), app.target)));
    if app.read_only {
        spans.push(Span::styled("  read-only", Style::new().fg(Color::Magenta)));
    }
    if let Some(why) = &app.store_error {
        spans.push(Span::styled(format!("  {why}"), Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)));
    }
    frame.render_widget(Line::from(spans), area);
}

fn columns(wide: bool) -> Vec<(Column, Constraint)> {
    let mut c =
        vec![(Column::Run, Constraint::Length(if wide { 20 } else { 14 })), (Column::Flow, Constraint::Fill(1))];
    if wide {
        c.push((Column::Object, Constraint::Length(12)));
    }
    c.push((Column::State, Constraint::Length(15)));
    c.push((Column::Progress, Constraint::Length(if wide { 44 } else { 18 })));
    c.push((Column::Age, Constraint::Length(4)));
    c.push((Column::Attempts, Constraint::Length(3)));
    c
}

/// `text` cut to `width` characters from the front: flows share their prefix
/// (`salesforce_bulkapi_query_`), their end tells them apart.
fn tail(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width || width == 0 {
        return text.to_owned();
    }
    let kept: String = text.chars().skip(n - width + 1).collect();
    format!("…{kept}")
}

fn cell(run: &RunView, column: Column, wide: bool, now: DateTime<Utc>, flow_width: usize) -> Cell<'static> {
    let at = run.scheduled_at;
    match column {
        Column::Run if wide => Cell::from(time(at)),
        Column::Run => Cell::from(at.format("%m-%d %H:%M:%S").to_string()),
        Column::Flow => Cell::from(tail(&run.flow, flow_width)),
        Column::Object => Cell::from(run.object.clone().unwrap_or_else(|| "-".into())),
        Column::State => Cell::from(Span::styled(run.state.clone(), state_style(&run.state))),
        Column::Progress if wide => {
            let mut text = run.progress_text();
            if run.progress.batches_written.len() > 1 {
                let mut sinks: Vec<String> =
                    run.progress.batches_written.iter().map(|(s, n)| format!("{}:{n}", short_sink(s))).collect();
                // The map comes unordered off the wire; rows must not reorder between frames.
                sinks.sort();
                text = format!("{text} [{}]", sinks.join(" "));
            }
            Cell::from(text)
        }
        Column::Progress => Cell::from(run.progress_text()),
        Column::Age => Cell::from(age(run.created_at, now)),
        Column::Attempts => Cell::from(run.attempts.to_string()),
    }
}

/// A writer flow's name without what every writer flow's name says: `salesforce_bulkapi_writer_
/// account_postgres` → `account_postgres`.
fn short_sink(sink: &str) -> &str {
    sink.split_once("_writer_").map_or(sink, |(_, rest)| rest)
}

fn render_runs(frame: &mut Frame, app: &App, area: Rect) {
    let wide = area.width >= WIDE;
    let columns = columns(wide);
    let sort_mark = if app.descending { "▼" } else { "▲" };
    let header = Row::new(columns.iter().map(|(c, _)| {
        let title = if *c == app.sort { format!("{}{sort_mark}", c.title()) } else { c.title().to_owned() };
        Cell::from(title)
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    // Only the rows that fit are built: the frame costs the screen's height, not the ledger's size.
    let height = area.height.saturating_sub(3) as usize;
    let offset = app.selected.saturating_sub(height.saturating_sub(1));
    let fixed: u16 = columns.iter().map(|(_, w)| if let Constraint::Length(n) = w { *n + 1 } else { 1 }).sum::<u16>()
        + if wide { WINDOW_WIDTH + 1 } else { 0 };
    let flow_width = area.width.saturating_sub(fixed + 2) as usize;
    let rows = app.visible().iter().skip(offset).take(height).filter_map(|id| app.runs.get(id)).map(|run| {
        let mut cells: Vec<Cell> = columns.iter().map(|(c, _)| cell(run, *c, wide, app.now, flow_width)).collect();
        if wide {
            cells.insert(2, Cell::from(run.window_text()));
        }
        Row::new(cells)
    });
    let mut widths: Vec<Constraint> = columns.iter().map(|(_, w)| *w).collect();
    let mut header = header;
    if wide {
        widths.insert(2, Constraint::Length(WINDOW_WIDTH));
        let mut titles: Vec<Cell> = columns
            .iter()
            .map(|(c, _)| if *c == app.sort { format!("{}{sort_mark}", c.title()) } else { c.title().to_owned() })
            .map(Cell::from)
            .collect();
        titles.insert(2, Cell::from("WINDOW"));
        header = Row::new(titles).style(Style::new().add_modifier(Modifier::BOLD));
    }
    let filter = if app.filter.is_empty() && app.mode != Mode::Filter {
        String::new()
    } else {
        format!(" filter: {}{} ", app.filter, if app.mode == Mode::Filter { "█" } else { "" })
    };
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(" Runs ").title_bottom(filter));
    let mut state = TableState::default().with_selected((!app.visible().is_empty()).then_some(app.selected - offset));
    frame.render_stateful_widget(table, area, &mut state);
    if app.visible().is_empty() {
        let text = if app.runs.is_empty() { "no runs" } else { "no run matches the filter" };
        let inner = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: 1 };
        frame.render_widget(Paragraph::new(text), inner);
    }
}

fn render_detail(frame: &mut Frame, app: &App, area: Rect) {
    let Some(detail) = &app.detail else { return };
    let run = &detail.run;
    let label = |l: &str| Span::styled(format!("{l:<11}"), Style::new().add_modifier(Modifier::BOLD));
    let mut lines = vec![
        Line::from(vec![label("run"), Span::raw(run.id.clone())]),
        Line::from(vec![
            label("state"),
            Span::styled(run.state.clone(), state_style(&run.state)),
            Span::raw(format!("   attempt {}   job {}", run.attempts, run.job_id.as_deref().unwrap_or("-"))),
        ]),
        Line::from(vec![
            label("window"),
            Span::raw(run.window_text()),
            Span::raw(format!("   object {}", run.object.as_deref().unwrap_or("-"))),
        ]),
        Line::from(vec![label("progress"), Span::raw(run.progress_text())]),
    ];
    let mut sinks: Vec<_> = run.progress.batches_written.iter().collect();
    sinks.sort();
    for (sink, n) in sinks {
        lines.push(Line::from(vec![label(""), Span::raw(format!("{sink}: {n} batches written"))]));
    }
    if run.state == "failed" {
        lines
            .push(Line::from(vec![label("next retry"), Span::raw("manual: press r (runs stay failed until retried)")]));
    }
    if let Some(why) = &run.waiting {
        lines.push(Line::from(vec![label("waiting"), Span::styled(why.clone(), Style::new().fg(Color::Yellow))]));
    }
    if let Some(e) = &run.last_error {
        lines.push(Line::from(vec![label("last error"), Span::styled(e.clone(), Style::new().fg(Color::Red))]));
    }
    lines.push(Line::from(label("timeline")));
    lines.push(Line::from(vec![label(""), Span::raw(format!("{}  opened", time(run.created_at)))]));
    for h in &run.history {
        let mut spans = vec![
            label(""),
            Span::raw(format!("{}  {} → ", time(h.at), h.from)),
            Span::styled(h.to.clone(), state_style(&h.to)),
        ];
        if let Some(e) = &h.error {
            spans.push(Span::raw(format!("  ({e})")));
        }
        lines.push(Line::from(spans));
    }
    for c in &detail.checkpoints {
        let at = DateTime::from_timestamp_millis(c.updated_at_ms).map_or_else(|| "?".into(), time);
        lines.push(Line::from(vec![
            label("checkpoint"),
            Span::raw(format!("{} at {at}  pages {} records {}", c.stage, c.pages_fetched, c.records_fetched)),
        ]));
    }
    let block = Block::bordered().title(" Run detail (Esc: back, ↑↓: scroll) ");
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(block).scroll((app.detail_scroll, 0));
    frame.render_widget(paragraph, area);
}

fn render_flows(frame: &mut Frame, app: &App, area: Rect) {
    let now = app.now.timestamp();
    let at = |t: Option<i64>| {
        t.and_then(|t| DateTime::from_timestamp(t, 0))
            .map(|t| t.format("%m-%d %H:%M").to_string())
            .unwrap_or("-".into())
    };
    let rows = app.flows.iter().map(|f| {
        let next = f.next_tick.map(|t| format!("in {}", age_secs(t - now))).unwrap_or("-".into());
        Row::new(vec![
            Cell::from(f.name.clone()),
            Cell::from(Span::styled(
                f.state.clone(),
                Style::new().fg(if f.leader { Color::Green } else { Color::DarkGray }),
            )),
            Cell::from(if f.leader { "yes" } else { "no" }),
            Cell::from(next),
            Cell::from(at(f.watermark)),
            Cell::from(at(f.last_success)),
            Cell::from(f.catch_up_runs.to_string()),
            // What the flow waits for comes first: it explains the skipped ticks that follow.
            Cell::from(match (&f.waiting, &f.skip_reason) {
                (Some(why), _) => {
                    Span::styled(format!("{} (waits: {why})", f.ticks_skipped), Style::new().fg(Color::Red))
                }
                (None, Some(why)) => {
                    Span::styled(format!("{} ({why})", f.ticks_skipped), Style::new().fg(Color::Yellow))
                }
                (None, None) => Span::raw(f.ticks_skipped.to_string()),
            }),
        ])
    });
    let header = Row::new(["FLOW", "STATE", "LEAD", "NEXT", "WATERMARK", "LAST OK", "CATCH-UP", "SKIPPED TICKS"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(7),
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths).header(header).block(Block::bordered().title(" Flows "));
    frame.render_widget(table, area);
}

fn age_secs(s: i64) -> String {
    let now = Utc::now();
    age(now - chrono::Duration::seconds(s.max(0)), now)
}

fn render_logs(frame: &mut Frame, app: &App, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = app
        .logs
        .iter()
        .rev()
        .take(height)
        .rev()
        .map(|l| {
            let color = if l.level == "ERROR" { Color::Red } else { Color::Yellow };
            let at =
                DateTime::from_timestamp_millis(l.at).map(|t| t.format("%H:%M:%S").to_string()).unwrap_or_default();
            Line::from(vec![
                Span::raw(format!("{at} ")),
                Span::styled(format!("{:<5} ", l.level), Style::new().fg(color)),
                Span::raw(l.message.clone()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Warnings and errors ")), area);
}

fn render_footer(frame: &mut Frame, app: &App, area: Rect) {
    let text = match (&app.mode, &app.message) {
        (Mode::Filter, _) => "type to filter · Enter keep · Esc clear".to_owned(),
        (_, Some(m)) => m.clone(),
        _ => "? help · / filter · s sort · Enter detail · r retry · c cancel · q quit".to_owned(),
    };
    frame.render_widget(Paragraph::new(text).style(Style::new().fg(Color::DarkGray)), area);
}

/// A rectangle of at most `w`×`h` in the middle of `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn render_help(frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![Span::styled(format!(" {k:<15}"), Style::new().fg(Color::Cyan)), Span::raw(*what)])
        })
        .collect();
    let popup = centered(area, 60, KEYS.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Keys (any key closes) ")), popup);
}

fn render_confirm(frame: &mut Frame, action: &Action, area: Rect) {
    let question = match action {
        Action::Retry(id) => format!("Retry {id}?"),
        Action::Cancel(id) => format!("Cancel {id}? Its Salesforce job is aborted."),
        _ => return,
    };
    let popup = centered(area, 70, 5);
    frame.render_widget(Clear, popup);
    let text = vec![Line::from(question), Line::from(""), Line::from("y: yes    n / Esc: no")];
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: true }).block(Block::bordered().title(" Confirm ")),
        popup,
    );
}

/// The buffer's text, one line per row with trailing spaces removed: what tests and the README's
/// captured screen read.
pub fn buffer_text(buffer: &Buffer) -> String {
    let width = buffer.area.width as usize;
    buffer
        .content()
        .chunks(width.max(1))
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>().trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
