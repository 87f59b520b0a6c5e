//! `script` tasks: Rhai run against one event. `event` is read-only, `ctx.meta` is carried forward,
//! and what the script returns decides the event's path: `()` filters it out, `event` passes it on
//! unchanged, a map (or any value) becomes the new data, an array fans out one event per element.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDateTime, Utc};
use rhai::{AST, Dynamic, Engine, EvalAltResult, Map as RhaiMap, Position, Scope};
use serde_json::{Map, Value};

use crate::event::{Event, EventData};

/// Enough for any reasonable per-event script; a runaway loop stops here instead of hanging a flow.
pub const DEFAULT_MAX_OPERATIONS: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("script syntax error at script line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("flow `{flow}`, task `{task}`: script failed at script line {line}: {message}")]
    Runtime { flow: String, task: String, line: usize, message: String },
}

/// One path out of a script run.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The script returned `event`: data passes on as it was.
    Unchanged,
    Data(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptResult {
    /// Empty when the script filtered the event out.
    pub outputs: Vec<Output>,
    /// The event's meta after the script's `ctx.meta` changes.
    pub meta: Map<String, Value>,
}

/// A compiled script, cheap to clone and share between events.
#[derive(Clone)]
pub struct Script {
    ast: Arc<AST>,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").finish_non_exhaustive()
    }
}

/// The read-only view of the event a script gets. A distinct type, so that returning it is
/// recognisable as "pass the event on unchanged" and assigning to it is impossible.
#[derive(Clone)]
struct EventView {
    data: Dynamic,
    meta: Dynamic,
    id: String,
    subject: Dynamic,
}

fn line(pos: Position) -> usize {
    pos.line().unwrap_or(0)
}

/// Rhai places an error at the end of the input (an unclosed `{`, a missing `;`) on a line past the
/// script's last, which would point past the end of the flow file. Such an error is placed on the
/// line that opened the construct left open, else on the script's last line with code.
fn syntax_error_line(code: &str, reported: usize) -> usize {
    let lines = code.lines().count().max(1);
    if reported >= 1 && reported <= lines {
        return reported;
    }
    if let Some(open) = last_unclosed_line(code) {
        return open;
    }
    code.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, _)| i + 1).last().unwrap_or(1)
}

/// The line of the innermost bracket still open at the end of `code`, skipping strings and comments.
fn last_unclosed_line(code: &str) -> Option<usize> {
    let mut open: Vec<usize> = Vec::new();
    let mut line = 1;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '"' | '`' | '\'' => {
                let mut escaped = false;
                for s in chars.by_ref() {
                    if s == '\n' {
                        line += 1;
                    }
                    if escaped {
                        escaped = false;
                    } else if s == '\\' {
                        escaped = true;
                    } else if s == c {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for s in chars.by_ref() {
                    if s == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                for s in chars.by_ref() {
                    if s == '\n' {
                        line += 1;
                    }
                    if star && s == '/' {
                        break;
                    }
                    star = s == '*';
                }
            }
            '{' | '(' | '[' => open.push(line),
            '}' | ')' | ']' => {
                open.pop();
            }
            _ => {}
        }
    }
    open.pop()
}

fn engine(max_operations: u64) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(max_operations);
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(64, 64);
    engine.set_max_string_size(16 * 1024 * 1024);
    engine.set_max_array_size(1_000_000);
    engine.set_max_map_size(100_000);
    engine
        .register_type_with_name::<EventView>("Event")
        .register_get("data", |e: &mut EventView| e.data.clone())
        .register_get("meta", |e: &mut EventView| e.meta.clone())
        .register_get("id", |e: &mut EventView| e.id.clone())
        .register_get("subject", |e: &mut EventView| e.subject.clone());
    engine.register_fn("timestamp_now", || Utc::now().timestamp());
    engine.register_fn("timestamp_to_iso", timestamp_to_iso);
    engine.register_fn("timestamp_to_iso", |secs: f64| timestamp_to_iso(secs.floor() as i64));
    engine.register_fn("parse_timestamp", parse_timestamp);
    engine
}

/// A SOQL datetime literal, `YYYY-MM-DDThh:mm:ssZ`.
pub fn timestamp_to_iso(secs: i64) -> Result<String, Box<EvalAltResult>> {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .ok_or_else(|| format!("timestamp_to_iso: {secs} is out of range").into())
}

/// Unix seconds from an ISO-8601 / RFC 3339 datetime (with or without offset or milliseconds),
/// Salesforce's `+0000` form, or a plain date.
pub fn parse_timestamp(text: &str) -> Result<i64, Box<EvalAltResult>> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp());
    }
    if let Ok(dt) = DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(dt.timestamp());
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(dt.and_utc().timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc().timestamp()).unwrap_or_default());
    }
    Err(format!("parse_timestamp: `{t}` is not a datetime").into())
}

fn shared_engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(engine(DEFAULT_MAX_OPERATIONS))).clone()
}

impl Script {
    pub fn compile(code: &str) -> Result<Self, ScriptError> {
        Self::compile_with(code, shared_engine())
    }

    /// Compile with a custom operations limit.
    pub fn compile_with_limit(code: &str, max_operations: u64) -> Result<Self, ScriptError> {
        Self::compile_with(code, Arc::new(engine(max_operations)))
    }

    fn compile_with(code: &str, engine: Arc<Engine>) -> Result<Self, ScriptError> {
        let ast = engine.compile(code).map_err(|e| ScriptError::Syntax {
            line: syntax_error_line(code, line(e.position())),
            message: e.err_type().to_string(),
        })?;
        Ok(Self { ast: Arc::new(ast), engine })
    }

    pub fn run(&self, flow: &str, task: &str, event: &Event) -> Result<ScriptResult, ScriptError> {
        let runtime = |line: usize, message: String| ScriptError::Runtime {
            flow: flow.to_string(),
            task: task.to_string(),
            line,
            message,
        };
        let to_dyn = |v: &Value| rhai::serde::to_dynamic(v).map_err(|e| runtime(0, e.to_string()));
        let data = match &event.data {
            EventData::Json(v) => to_dyn(v)?,
            EventData::Arrow(batch) => {
                let mut m = RhaiMap::new();
                m.insert("num_rows".into(), Dynamic::from(batch.num_rows() as i64));
                Dynamic::from_map(m)
            }
            EventData::Bytes(b) => Dynamic::from_blob(b.to_vec()),
        };
        let meta = to_dyn(&Value::Object(event.meta.clone()))?;
        let view = EventView {
            data,
            meta: meta.clone(),
            id: event.id.clone(),
            subject: event.subject.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT),
        };
        let mut ctx = RhaiMap::new();
        ctx.insert("meta".into(), meta);
        let mut scope = Scope::new();
        scope.push_constant("event", view);
        scope.push("ctx", ctx);

        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast)
            .map_err(|e| runtime(line(e.position()), e.to_string()))?;

        let meta = match scope.get_value::<RhaiMap>("ctx").and_then(|c| c.get("meta").cloned()) {
            Some(m) => match rhai::serde::from_dynamic::<Value>(&m).map_err(|e| runtime(0, e.to_string()))? {
                Value::Object(m) => m,
                _ => return Err(runtime(0, "`ctx.meta` must stay a map".into())),
            },
            None => return Err(runtime(0, "`ctx` or `ctx.meta` was replaced by something that is not a map".into())),
        };
        let to_output = |d: Dynamic| -> Result<Output, ScriptError> {
            if d.is::<EventView>() {
                Ok(Output::Unchanged)
            } else {
                rhai::serde::from_dynamic::<Value>(&d).map(Output::Data).map_err(|e| runtime(0, e.to_string()))
            }
        };
        let outputs = if result.is_unit() {
            Vec::new()
        } else if result.is_array() {
            let items = result.into_array().map_err(|t| runtime(0, format!("expected an array, got {t}")))?;
            items.into_iter().filter(|d| !d.is_unit()).map(to_output).collect::<Result<_, _>>()?
        } else {
            vec![to_output(result)?]
        };
        Ok(ScriptResult { outputs, meta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(data: Value) -> Event {
        Event::json("e1", data)
    }

    fn run(code: &str, ev: &Event) -> ScriptResult {
        Script::compile(code).unwrap().run("f", "t", ev).unwrap()
    }

    #[test]
    fn timestamp_helpers() {
        assert_eq!(timestamp_to_iso(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp_to_iso(1_764_061_200).unwrap(), "2025-11-25T09:00:00Z");
        assert!(timestamp_to_iso(i64::MAX).is_err());
        assert_eq!(parse_timestamp("2025-11-25T09:00:00Z").unwrap(), 1_764_061_200);
        assert_eq!(parse_timestamp("2025-11-25T09:00:00.000Z").unwrap(), 1_764_061_200);
        assert_eq!(parse_timestamp("2025-11-25T10:00:00+01:00").unwrap(), 1_764_061_200);
        assert_eq!(parse_timestamp("2025-11-25T09:00:00.000+0000").unwrap(), 1_764_061_200);
        assert_eq!(parse_timestamp("2025-11-25").unwrap(), 1_764_028_800);
        assert!(parse_timestamp("yesterday").is_err());
        let now = run("timestamp_now()", &event(json!({})));
        let Output::Data(Value::Number(n)) = &now.outputs[0] else { panic!("{now:?}") };
        assert!((n.as_i64().unwrap() - Utc::now().timestamp()).abs() < 5);
        let r = run(r#"parse_timestamp(timestamp_to_iso(1764061200))"#, &event(json!({})));
        assert_eq!(r.outputs, vec![Output::Data(json!(1_764_061_200))]);
    }

    #[test]
    fn unit_filters_the_event_out() {
        assert!(run("()", &event(json!({}))).outputs.is_empty());
        assert!(run("if false { 1 }", &event(json!({}))).outputs.is_empty());
    }

    #[test]
    fn returning_event_passes_it_on_unchanged() {
        assert_eq!(run("event", &event(json!({"a": 1}))).outputs, vec![Output::Unchanged]);
    }

    #[test]
    fn a_map_becomes_the_new_data() {
        let r = run("#{ x: event.data.a + 1, s: `v` }", &event(json!({"a": 1})));
        assert_eq!(r.outputs, vec![Output::Data(json!({"x": 2, "s": "v"}))]);
    }

    #[test]
    fn an_array_fans_out() {
        let r = run("[#{n: 1}, #{n: 2}, event]", &event(json!({})));
        assert_eq!(r.outputs, vec![Output::Data(json!({"n": 1})), Output::Data(json!({"n": 2})), Output::Unchanged]);
    }

    #[test]
    fn event_is_read_only() {
        let err = Script::compile("event.data = 1; event").unwrap().run("f", "t", &event(json!({}))).unwrap_err();
        assert!(matches!(err, ScriptError::Runtime { .. }), "{err}");
        let err = Script::compile("event = 1; event").unwrap().run("f", "t", &event(json!({}))).unwrap_err();
        assert!(err.to_string().contains("constant"), "{err}");
    }

    #[test]
    fn ctx_meta_is_carried_forward_and_starts_from_the_event_meta() {
        let mut ev = event(json!({}));
        ev.meta.insert("run_id".into(), json!("r1"));
        let r = run("ctx.meta.x = 1; event", &ev);
        assert_eq!(r.meta, json!({"run_id": "r1", "x": 1}).as_object().unwrap().clone());
    }

    #[test]
    fn errors_name_flow_task_and_line() {
        let err =
            Script::compile("let a = 1;\nlet b = a + \"x\" * 2;\nb").unwrap().run("flow1", "task1", &event(json!({})));
        let err = err.unwrap_err().to_string();
        assert!(err.starts_with("flow `flow1`, task `task1`: script failed at script line 2"), "{err}");
        let syntax = Script::compile("let a = ;").unwrap_err();
        assert!(matches!(syntax, ScriptError::Syntax { line: 1, .. }), "{syntax}");
    }

    #[test]
    fn a_syntax_error_at_the_end_is_placed_inside_the_script() {
        // The map opened on line 1 is never closed: Rhai reports the end of input, line 3.
        let open = Script::compile("#{ a: 1,\n   b: \"}\" // }\n").unwrap_err();
        assert!(matches!(open, ScriptError::Syntax { line: 1, .. }), "{open}");
        let nested = Script::compile("let x = 1;\nif x > 0 {\n  foo(1, [2,\n").unwrap_err();
        assert!(matches!(nested, ScriptError::Syntax { line: 3, .. }), "{nested}");
        let dangling = Script::compile("let a = 1;\nlet b = a +\n\n").unwrap_err();
        assert!(matches!(dangling, ScriptError::Syntax { line: 2, .. }), "{dangling}");
    }

    #[test]
    fn runaway_scripts_stop() {
        let err = Script::compile_with_limit("loop {}", 10_000).unwrap().run("f", "t", &event(json!({}))).unwrap_err();
        assert!(err.to_string().contains("operations"), "{err}");
    }
}
