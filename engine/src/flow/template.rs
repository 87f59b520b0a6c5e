//! `{{ }}` templates in config strings and resource files. Only paths are allowed — `event.…` and
//! `env.NAME` — so a template can never run code and every template can be checked at load time.

use std::fmt;

use serde::de::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    Event,
    Env,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathExpr {
    pub root: Root,
    pub segments: Vec<String>,
}

impl fmt::Display for PathExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.root {
            Root::Event => "event",
            Root::Env => "env",
        })?;
        for s in &self.segments {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Path(PathExpr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template syntax error at `{}` (character {offset}): {reason}", excerpt(template, *offset))]
    Syntax { template: String, offset: usize, reason: String },
    #[error("template `{template}`: `{path}` is not in the event")]
    MissingPath { template: String, path: String },
    #[error("template `{template}`: `{path}` is {found}, which cannot be written into a string")]
    NotText { template: String, path: String, found: &'static str },
}

/// The part of a long template around a syntax error, so a whole SOQL file is not repeated.
fn excerpt(template: &str, offset: usize) -> String {
    let rest = template.get(offset..).unwrap_or(template);
    let line = rest.lines().next().unwrap_or("");
    match line.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_string(),
    }
}

/// What a template can read: the event as JSON (`data`, `meta`, `id`, `subject`) and the environment.
pub struct Context<'a> {
    pub event: Option<&'a Value>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let syntax = |offset: usize, reason: &str| TemplateError::Syntax {
            template: source.to_string(),
            offset,
            reason: reason.to_string(),
        };
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let inner_start = start + 2;
            let Some(len) = rest[inner_start..].find("}}") else {
                return Err(syntax(offset + start, "`{{` is never closed with `}}`"));
            };
            let expr = rest[inner_start..inner_start + len].trim();
            parts.push(Part::Path(parse_path(expr).map_err(|r| syntax(offset + inner_start, &r))?));
            let consumed = inner_start + len + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self { source: source.to_string(), parts })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// A template with no `{{ }}` renders to itself.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    pub fn paths(&self) -> impl Iterator<Item = &PathExpr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Path(p) => Some(p),
            Part::Literal(_) => None,
        })
    }

    /// Environment variables the template reads.
    pub fn env_vars(&self) -> impl Iterator<Item = &str> {
        self.paths().filter(|p| p.root == Root::Env).filter_map(|p| p.segments.first().map(String::as_str))
    }

    pub fn reads_event(&self) -> bool {
        self.paths().any(|p| p.root == Root::Event)
    }

    /// Render to a value: a template that is exactly one path keeps that value's type (a number
    /// stays a number, a map a map); anything else becomes a string.
    pub fn render(&self, ctx: &Context<'_>) -> Result<Value, TemplateError> {
        if let [Part::Path(path)] = self.parts.as_slice() {
            return self.lookup(path, ctx);
        }
        Ok(Value::String(self.render_string(ctx)?))
    }

    /// Render to text, as config strings (URLs, subjects, paths) need.
    pub fn render_string(&self, ctx: &Context<'_>) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Path(p) => match self.lookup(p, ctx)? {
                    Value::String(s) => out.push_str(&s),
                    Value::Null => {}
                    Value::Bool(b) => out.push_str(&b.to_string()),
                    Value::Number(n) => out.push_str(&n.to_string()),
                    other => {
                        return Err(TemplateError::NotText {
                            template: self.source.clone(),
                            path: p.to_string(),
                            found: if other.is_array() { "a list" } else { "a map" },
                        });
                    }
                },
            }
        }
        Ok(out)
    }

    fn lookup(&self, path: &PathExpr, ctx: &Context<'_>) -> Result<Value, TemplateError> {
        match path.root {
            // An unset variable renders empty: `url: "{{env.NATS_URL}}"` then selects the embedded bus.
            Root::Env => Ok(Value::String(path.segments.first().and_then(|n| (ctx.env)(n)).unwrap_or_default())),
            Root::Event => {
                let missing = || TemplateError::MissingPath { template: self.source.clone(), path: path.to_string() };
                let mut cur = ctx.event.ok_or_else(missing)?;
                for seg in &path.segments {
                    cur = match cur {
                        Value::Object(m) => m.get(seg),
                        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                        _ => None,
                    }
                    .ok_or_else(missing)?;
                }
                Ok(cur.clone())
            }
        }
    }
}

fn parse_path(expr: &str) -> Result<PathExpr, String> {
    if expr.is_empty() {
        return Err("empty `{{ }}`: write a path such as `event.data.id` or `env.NAME`".into());
    }
    let (head, tail) = expr.split_once('.').map_or((expr, None), |(h, t)| (h, Some(t)));
    let root = match head {
        "event" => Root::Event,
        "env" => Root::Env,
        other => {
            return Err(format!("`{other}` is not something a template can read; paths start with `event.` or `env.`"));
        }
    };
    let segments: Vec<String> = tail.map(|t| t.split('.').map(str::to_string).collect()).unwrap_or_default();
    if let Some(bad) =
        segments.iter().find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(format!("`{expr}` is not a path: bad segment `{bad}` (only letters, digits, `_` and `-`)"));
    }
    match root {
        Root::Env if segments.len() != 1 => Err(format!("`{expr}`: write `env.NAME` with one variable name")),
        Root::Event if segments.is_empty() => Err("`event` alone: name a field, e.g. `event.data.id`".into()),
        Root::Event if !matches!(segments[0].as_str(), "data" | "meta" | "id" | "subject") => {
            Err(format!("`{expr}`: an event has `data`, `meta`, `id` and `subject`, not `{}`", segments[0]))
        }
        _ => Ok(PathExpr { root, segments }),
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Template::parse(&source).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        (name == "NATS_URL").then(|| "nats://127.0.0.1:4222".to_string())
    }

    fn render(t: &str, event: &Value) -> Result<Value, TemplateError> {
        Template::parse(t).unwrap().render(&Context { event: Some(event), env: &env })
    }

    #[test]
    fn literal_strings_render_to_themselves() {
        let t = Template::parse("salesforce_bulkapi.>").unwrap();
        assert!(t.is_literal());
        assert_eq!(render("plain", &json!({})).unwrap(), json!("plain"));
    }

    #[test]
    fn a_single_path_keeps_its_type() {
        let ev = json!({"data": {"n": 42, "ok": true, "m": {"a": 1}}});
        assert_eq!(render("{{event.data.n}}", &ev).unwrap(), json!(42));
        assert_eq!(render("{{ event.data.ok }}", &ev).unwrap(), json!(true));
        assert_eq!(render("{{event.data.m}}", &ev).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn mixed_text_becomes_a_string() {
        let ev = json!({"meta": {"object_name": "account"}, "data": {"n": 7}});
        assert_eq!(
            render("salesforce_bulkapi.query_jobs.{{event.meta.object_name}}", &ev).unwrap(),
            json!("salesforce_bulkapi.query_jobs.account")
        );
        assert_eq!(render("n={{event.data.n}}", &ev).unwrap(), json!("n=7"));
    }

    #[test]
    fn a_map_cannot_be_written_into_text() {
        let ev = json!({"data": {"m": {"a": 1}}});
        assert!(matches!(render("x{{event.data.m}}", &ev), Err(TemplateError::NotText { .. })));
    }

    #[test]
    fn array_indices_are_path_segments() {
        let ev = json!({"data": {"ids": ["a", "b"]}});
        assert_eq!(render("{{event.data.ids.1}}", &ev).unwrap(), json!("b"));
    }

    #[test]
    fn a_missing_event_path_is_an_error_naming_the_template() {
        let err = render("{{event.data.nope}}", &json!({"data": {}})).unwrap_err();
        assert_eq!(err.to_string(), "template `{{event.data.nope}}`: `event.data.nope` is not in the event");
        let no_event = Template::parse("{{event.id}}").unwrap().render(&Context { event: None, env: &env });
        assert!(matches!(no_event, Err(TemplateError::MissingPath { .. })));
    }

    #[test]
    fn env_vars_render_and_unset_ones_render_empty() {
        assert_eq!(render("{{env.NATS_URL}}", &json!({})).unwrap(), json!("nats://127.0.0.1:4222"));
        assert_eq!(render("{{env.UNSET_THING}}", &json!({})).unwrap(), json!(""));
        assert_eq!(render("{{env.UNSET_THING}}/x", &json!({})).unwrap(), json!("/x"));
        let t = Template::parse("{{env.A}}-{{event.id}}-{{env.B}}").unwrap();
        assert_eq!(t.env_vars().collect::<Vec<_>>(), ["A", "B"]);
        assert!(t.reads_event());
    }

    #[test]
    fn syntax_errors_are_reported() {
        for (bad, needle) in [
            ("{{event.data.id", "never closed"),
            ("{{}}", "empty"),
            ("{{ foo.bar }}", "`foo` is not something"),
            ("{{event}}", "name a field"),
            ("{{event.dat.x}}", "not `dat`"),
            ("{{env}}", "one variable name"),
            ("{{env.A.B}}", "one variable name"),
            ("{{event.data..x}}", "bad segment"),
            ("{{event.data.x | upper}}", "bad segment"),
        ] {
            let err = Template::parse(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn soql_resource_renders_with_the_window_start() {
        let soql = include_str!("../../../resources/salesforce/query_account.soql");
        let ev = json!({"data": {"last_run_iso": "2026-11-24T09:00:00Z"}});
        let out = Template::parse(soql).unwrap().render_string(&Context { event: Some(&ev), env: &env }).unwrap();
        assert!(out.contains("WHERE LastModifiedDate >= 2026-11-24T09:00:00Z\n"), "{out}");
    }
}
