//! The UI rendered to ratatui's `TestBackend`, at 80×24 and 160×48, in each of its modes.

use bulkflow_control_proto as pb;
use chrono::{DateTime, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{Action, App, Mode};
use crate::{buffer_text, render, sample};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

const FAILED: &str = "salesforce_bulkapi_query_account@2026-11-25T09:00:00Z";

fn app() -> App {
    let mut app = App::new("bulkflow-state/control.sock", false);
    app.set_connected(true, None);
    app.now = at("2026-11-25T10:00:00Z");
    let upserts = vec![
        sample::run(
            "salesforce_bulkapi_query_account",
            at("2026-11-25T09:00:00Z"),
            "failed",
            Some("INVALID_FIELD: No such column 'Foo' on entity 'Account'"),
        ),
        sample::run("salesforce_bulkapi_query_account", at("2026-11-25T08:00:00Z"), "written", None),
        sample::run("salesforce_bulkapi_query_contact", at("2026-11-25T09:30:00Z"), "job_created", None),
    ];
    app.apply(pb::RunChanges { snapshot: true, upserts, removed: vec![] }).unwrap();
    app.flows = vec![pb::Flow {
        name: "salesforce_bulkapi_query_account".into(),
        state: "active".into(),
        leader: true,
        next_tick: Some(at("2026-11-25T10:05:00Z").timestamp()),
        watermark: Some(at("2026-11-25T08:00:00Z").timestamp()),
        last_success: Some(at("2026-11-25T08:01:00Z").timestamp()),
        catch_up_runs: 0,
        object: None,
        ticks_skipped: 2,
        skip_reason: Some("run salesforce_bulkapi_query_contact@2026-11-25T09:30:00Z is `job_created`".into()),
        waiting: None,
    }];
    app.push_log(pb::LogLine {
        at: at("2026-11-25T09:00:07Z").timestamp_millis(),
        level: "ERROR".into(),
        target: "bulkflow".into(),
        message: "run failed run=salesforce_bulkapi_query_account@2026-11-25T09:00:00Z".into(),
    });
    app
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| render(f, app)).unwrap();
    buffer_text(terminal.backend().buffer())
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn the_runs_table_at_80x24_shows_each_run_its_state_and_progress() {
    let text = screen(&app(), 80, 24);
    assert!(text.contains("connected") && !text.contains("disconnected"), "{text}");
    assert!(text.contains("RUN▼") && text.contains("STATE") && text.contains("PROGRESS"), "{text}");
    assert!(text.contains("11-25 09:30:00") && text.contains("job_created"), "{text}");
    assert!(text.contains("failed") && text.contains("written"), "{text}");
    assert!(text.contains("pg3 p12 w11 41.2k"), "{text}");
    assert!(text.contains("Flows") && text.contains("in 5m") && text.contains("active"), "{text}");
    assert!(text.contains("ERROR run failed"), "{text}");
    // Newest first: the contact run (09:30) is above the failed account run (09:00).
    assert!(text.find("09:30:00").unwrap() < text.find("09:00:00").unwrap());
    assert!(text.lines().all(|l| l.chars().count() <= 80));
}

#[test]
fn a_wide_terminal_adds_the_window_the_object_and_each_sink() {
    let text = screen(&app(), 160, 48);
    assert!(text.contains("WINDOW") && text.contains("OBJECT") && text.contains("Account"), "{text}");
    assert!(text.contains("11-25 08:00 → 11-25 09:00"), "{text}");
    let mut app = app();
    let backfill = sample::run("salesforce_bulkapi_query_account", at("2026-11-25T07:00:00Z"), "scheduled", None);
    let backfill = pb::Run { window_start: Some(at("1990-01-01T00:00:00Z").timestamp()), ..backfill };
    app.apply(pb::RunChanges { snapshot: false, upserts: vec![backfill], removed: vec![] }).unwrap();
    assert!(screen(&app, 160, 48).contains("1990-01-01 00:00 → 11-25 07:00"));
    assert!(text.contains("[lake:12 warehouse:11]"), "{text}");
    assert!(text.contains("2026-11-25 09:00:00"), "{text}");
    assert!(text.contains("…bulkapi_query_contact"), "the flow keeps a column:\n{text}");
    // The flows pane says how many ticks were skipped and which run held them back.
    assert!(text.contains("SKIPPED TICKS") && text.contains("2 (run salesforce_bulkapi_query_contact@"), "{text}");
    // Between 80 and 150 columns the narrow table is used, its flow column wider.
    let text = screen(&crate::tests::app(), 130, 32);
    assert!(!text.contains("WINDOW") && text.contains("salesforce_bulkapi_query_contact"), "{text}");
}

/// A flow whose source cannot listen (a bus down at start) says what it waits for in the flows
/// pane, and a state store that cannot write says so in the title line.
#[test]
fn what_a_flow_and_the_store_wait_for_is_on_screen() {
    let mut app = app();
    app.flows[0].waiting = Some("the bus is down".into());
    app.store_error = Some("the state store cannot write: No space left on device (os error 28)".into());
    let text = screen(&app, 200, 32);
    assert!(text.contains("2 (waits: the bus is down)"), "{text}");
    let title = text.lines().next().unwrap();
    assert!(title.contains("the state store cannot write: No space left on device"), "{title}");
    app.flows[0].waiting = None;
    app.store_error = None;
    let text = screen(&app, 200, 32);
    assert!(!text.contains("waits:") && !text.contains("cannot write"), "{text}");
}

#[test]
fn enter_opens_the_detail_with_its_timeline_and_full_error() {
    let mut app = app();
    app.on_key(code(KeyCode::Down));
    assert_eq!(app.on_key(code(KeyCode::Enter)), Some(Action::Load(FAILED.into())));
    let text = screen(&app, 80, 24);
    assert!(text.contains("Run detail"), "{text}");
    assert!(text.contains("INVALID_FIELD: No such column 'Foo' on entity 'Account'"), "{text}");
    assert!(text.contains("2026-11-25 09:00:05  scheduled → failed"), "{text}");
    assert!(text.contains("next retry") && text.contains("attempt 1"), "{text}");
    // Scrolling moves the timeline up; the run's first line leaves the screen.
    app.on_key(code(KeyCode::Down));
    assert!(!screen(&app, 80, 24).contains("run        salesforce_bulkapi_query_account@"));
    app.on_key(code(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Table);
    assert!(screen(&app, 80, 24).contains("Runs"));
}

#[test]
fn the_detail_of_a_run_with_no_writer_says_why_it_waits() {
    let mut app = app();
    let run = sample::run("salesforce_bulkapi_query_account", at("2026-11-25T09:45:00Z"), "published", None);
    let why = "no writer flow subscribes to salesforce_bulkapi.query_jobs.account";
    let run = pb::Run { waiting: Some(why.into()), ..run };
    app.apply(pb::RunChanges { snapshot: false, upserts: vec![run], removed: vec![] }).unwrap();
    for _ in 0..5 {
        app.on_key(code(KeyCode::Up));
    }
    let newest = "salesforce_bulkapi_query_account@2026-11-25T09:45:00Z";
    assert_eq!(app.on_key(code(KeyCode::Enter)), Some(Action::Load(newest.into())));
    let text = screen(&app, 160, 48);
    assert!(text.contains(&format!("waiting    {why}")), "{text}");
}

#[test]
fn question_mark_lists_every_key_and_any_key_closes_it() {
    let mut app = app();
    app.on_key(key('?'));
    let text = screen(&app, 80, 24);
    for (k, what) in crate::render::KEYS {
        assert!(text.contains(k) && text.contains(what), "{k} {what} missing:\n{text}");
    }
    app.on_key(key('x'));
    assert_eq!(app.mode, Mode::Table);
}

#[test]
fn the_filter_narrows_the_table_as_it_is_typed() {
    let mut app = app();
    app.on_key(key('/'));
    for c in "state:failed".chars() {
        app.on_key(key(c));
    }
    let text = screen(&app, 80, 24);
    assert!(text.contains("filter: state:failed█"), "{text}");
    assert!(text.contains("1/3 runs"), "{text}");
    assert!(!text.contains("job_created") && !text.contains("written"), "{text}");
    app.on_key(code(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Table);
    app.on_key(key('/'));
    for c in "flow:nothing".chars() {
        app.on_key(key(c));
    }
    app.filter = "flow:nothing".into();
    app.on_key(code(KeyCode::Enter));
    assert!(screen(&app, 80, 24).contains("no run matches the filter"));
    app.on_key(code(KeyCode::Esc));
    assert_eq!(app.visible().len(), 3);
}

#[test]
fn retry_asks_first_and_sorting_keeps_the_selected_run() {
    let mut app = app();
    app.on_key(code(KeyCode::Down));
    assert_eq!(app.selected_run().unwrap().id(), FAILED);
    assert_eq!(app.on_key(key('r')), None);
    let text = screen(&app, 80, 24);
    assert!(
        text.contains(&format!("Retry {FAILED}?")) || text.contains("Retry salesforce_bulkapi_query_account@"),
        "{text}"
    );
    assert_eq!(app.on_key(key('n')), None);
    assert_eq!(app.mode, Mode::Table);
    app.on_key(key('r'));
    assert_eq!(app.on_key(key('y')), Some(Action::Retry(FAILED.into())));
    app.on_key(key('s'));
    app.on_key(key('S'));
    assert_eq!(app.selected_run().unwrap().id(), FAILED, "the selection follows its run through a re-sort");
    assert!(screen(&app, 80, 24).contains("FLOW▲"));
}

#[test]
fn read_only_refuses_changes_and_a_lost_engine_shows_disconnected() {
    let mut app = app();
    app.read_only = true;
    app.on_key(key('c'));
    assert_eq!(app.mode, Mode::Table);
    app.set_connected(false, Some("transport error; reconnecting".into()));
    let text = screen(&app, 80, 24);
    assert!(text.contains("disconnected") && text.contains("read-only: retry and cancel are off"), "{text}");
    assert!(text.contains("reconnecting"), "{text}");
}

#[test]
fn changes_update_and_remove_runs_in_place() {
    let mut app = app();
    let done = sample::run("salesforce_bulkapi_query_contact", at("2026-11-25T09:30:00Z"), "written", None);
    app.apply(pb::RunChanges { snapshot: false, upserts: vec![done], removed: vec![FAILED.into()] }).unwrap();
    let text = screen(&app, 80, 24);
    assert!(!text.contains("job_created") && !text.contains("09:00:00"), "{text}");
    assert!(text.contains("2/2 runs"), "{text}");
}
