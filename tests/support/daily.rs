//! A project with one flow, `daily`: a trigger that never fires during a test, and a script that
//! fails any window starting before 2000, so one backfill fails and another succeeds. Included
//! with `#[path = "support/daily.rs"] mod daily;`.

const FLOW: &str = r#"flow:
  name: daily
  tasks:
    - generate:
        name: trigger
        cron: "0 3 * * *"
    - script:
        name: window
        code: |
          let since = event.data.system_info.last_run_time;
          if since == () || since < 946684800 { throw "window starts before 2000"; }
          #{ since: since }
"#;

/// A fresh project directory holding the flow.
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wf")).unwrap();
    std::fs::create_dir_all(dir.path().join("res")).unwrap();
    std::fs::write(dir.path().join("wf/daily.yaml"), FLOW).unwrap();
    dir
}
