//! Frame cost with 1,000 runs in the store: applying the engine's snapshot, re-filtering on a
//! keystroke, and rendering a frame to ratatui's `TestBackend` at 80×24 and 160×48.
//!
//! ```sh
//! cargo bench -p bulkflow-tui --profile dev --bench render   # as recorded in BENCHMARKS.md
//! cargo bench -p bulkflow-tui --bench render                 # release numbers
//! ```
//!
//! Exits non-zero when a frame takes longer than a 60 Hz screen allows, so a regression that
//! makes the UI sluggish fails loudly rather than being read past.

use std::time::{Duration, Instant};

use bulkflow_tui::app::App;
use bulkflow_tui::{render, sample};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const RUNS: usize = 1_000;
const FRAMES: u32 = 500;
/// One frame of a 60 Hz display.
const BUDGET: Duration = Duration::from_micros(16_667);

fn per(total: Duration, n: u32) -> Duration {
    total / n
}

fn main() {
    let end = "2026-11-25T10:00:00Z".parse().unwrap();
    let snapshot = sample::many(RUNS, end);
    let mut app = App::new("bench", false);
    app.now = end;
    app.set_connected(true, None);
    let started = Instant::now();
    app.apply(snapshot.clone()).unwrap();
    let apply = started.elapsed();
    println!("apply a snapshot of {RUNS} runs: {apply:?}");

    let started = Instant::now();
    for _ in 0..FRAMES {
        app.on_key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE));
    }
    let resort = per(started.elapsed(), FRAMES);
    println!("re-sort {RUNS} runs on a key: {resort:?}");

    let mut worst = Duration::ZERO;
    for (w, h) in [(80, 24), (160, 48)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        // The selection walks the table, so frames scroll as an operator's would.
        let started = Instant::now();
        let mut slowest = Duration::ZERO;
        for i in 0..FRAMES {
            app.selected = (i as usize * 7) % RUNS;
            let frame = Instant::now();
            terminal.draw(|f| render(f, &app)).unwrap();
            slowest = slowest.max(frame.elapsed());
        }
        let mean = per(started.elapsed(), FRAMES);
        println!("render {w}x{h} with {RUNS} runs: {mean:?} per frame (slowest {slowest:?}, {FRAMES} frames)");
        worst = worst.max(mean).max(apply.max(resort));
    }
    if worst > BUDGET {
        eprintln!("slower than one 60 Hz frame ({BUDGET:?}): {worst:?}");
        std::process::exit(1);
    }
}
