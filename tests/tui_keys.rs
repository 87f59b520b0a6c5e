//! The terminal UI's keys against a real engine: its state comes from the engine's watch stream,
//! and a retry confirmed with `y` reaches the engine, which runs the run again.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulkflow_control_proto::client::{Address, connect};
use bulkflow_control_proto::{RunRef, WatchRunsRequest};
use bulkflow_tui::app::{Action, App, Mode};
use bulkflow_tui::client::perform;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[path = "support/bulkflow_cmd.rs"]
mod bulkflow_cmd;
#[path = "support/daily.rs"]
mod daily;

use bulkflow_cmd::bulkflow;

struct Engine(Child);

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn screen(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal.draw(|f| bulkflow_tui::render(f, app)).unwrap();
    bulkflow_tui::buffer_text(terminal.backend().buffer())
}

#[tokio::test]
async fn filter_open_detail_and_retry_with_confirmation_reach_the_engine() {
    let dir = daily::project();
    let d = dir.path();
    let out = bulkflow(d, &["runs", "start", "daily", "--since", "1990-01-01T00:00:00Z"]).output().unwrap();
    assert!(out.status.success());
    let bad = String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string();
    let log = std::fs::File::create(d.join("run.log")).unwrap();
    let _engine = Engine(bulkflow(d, &["run"]).stdout(Stdio::null()).stderr(log).spawn().unwrap());

    let address = Address::Unix(d.join("state/control.sock"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut client = loop {
        if let Ok(c) = connect(&address, None).await {
            break c;
        }
        assert!(Instant::now() < deadline, "the engine's control socket never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The UI's view, fed by the watch stream until the run has failed.
    let mut app = App::new(address.to_string(), false);
    app.set_connected(true, None);
    let mut watch = client.watch_runs(WatchRunsRequest {}).await.unwrap().into_inner();
    while app.runs.get(&bad).is_none_or(|r| r.state() != "failed") {
        let changes = tokio::time::timeout(Duration::from_secs(30), watch.message()).await.unwrap().unwrap().unwrap();
        app.apply(changes).unwrap();
    }

    // `/state:failed` Enter: the table shows the failed run alone.
    app.on_key(key(KeyCode::Char('/')));
    for c in "state:failed".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.visible(), std::slice::from_ref(&bad));
    assert!(screen(&app).contains("failed"));

    // Enter opens the detail, which the engine fills in.
    let load = app.on_key(key(KeyCode::Enter)).unwrap();
    assert_eq!(load, Action::Load(bad.clone()));
    let outcome = perform(&mut client, &load).await.unwrap();
    app.set_detail(outcome.detail.unwrap());
    let text = screen(&app);
    assert!(text.contains("window starts before 2000"), "{text}");
    assert!(text.contains("checkpoint scheduled"), "{text}");

    // `r` asks; `y` confirms; the retry reaches the engine.
    assert_eq!(app.on_key(key(KeyCode::Char('r'))), None);
    assert!(matches!(app.mode, Mode::Confirm(_)));
    assert!(screen(&app).contains("Retry daily@"));
    let retry = app.on_key(key(KeyCode::Char('y'))).unwrap();
    assert_eq!(retry, Action::Retry(bad.clone()));
    let outcome = perform(&mut client, &retry).await.unwrap();
    assert_eq!(outcome.note, format!("{bad} retried (attempt 2)"));

    let detail = client.get_run(RunRef { id: bad.clone() }).await.unwrap().into_inner();
    let run = detail.run.unwrap();
    // The typed fields (what the UI reads) and `record_json` (kept for older clients) agree.
    let record: serde_json::Value = serde_json::from_str(&run.record_json).unwrap();
    assert_eq!(record["attempts"], 2);
    assert_eq!(run.attempts, 2);
    let history = record["history"].as_array().unwrap();
    assert!(history.iter().any(|h| h["from"] == "failed" && h["to"] == "scheduled"), "{record:#}");
    assert!(run.history.iter().any(|h| h.from == "failed" && h.to == "scheduled"), "{:?}", run.history);
    assert_eq!(record["state"].as_str(), Some(run.state.as_str()));
    assert_eq!(record["id"].as_str(), Some(run.id.as_str()));
    // And the watch stream brings the change back to the UI: the engine fired the retried run at
    // once, and its window (before 2000) failed again.
    while app.runs[&bad].attempts != 2 || app.runs[&bad].state() != "failed" {
        let changes = tokio::time::timeout(Duration::from_secs(10), watch.message()).await.unwrap().unwrap().unwrap();
        app.apply(changes).unwrap();
    }
}
