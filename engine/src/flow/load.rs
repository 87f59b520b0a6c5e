//! Reading flow files: YAML → typed tasks → cross-task checks. Every problem becomes a
//! [`Diagnostic`] with file, line, column and key; one flow reports all of its problems at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::de::{DeError, from_node};
use super::diagnostic::{Diagnostic, Mark, did_you_mean};
use super::located::Located;
use super::model::{Flow, RetryConfig, Task, TaskKind};
use super::resource::{ResourceOrInline, ResourceRef};
use super::template::{Template, TemplateError};
use super::yaml::{self, Node, NodeValue};
use crate::credentials::CredentialsRoot;
use crate::schema::TableSchema;
use crate::tasks;

/// What loading needs from outside the flow file.
pub struct LoadContext<'a> {
    pub resources_dir: &'a Path,
    pub credentials: &'a CredentialsRoot,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Every flow of a folder (recursively, `*.yaml` and `*.yml`, in path order), or of one file, with all
/// problems found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub flows: Vec<Flow>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}")]
pub struct LoadIoError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

pub fn load_dir(dir: &Path, ctx: &LoadContext<'_>) -> Result<Loaded, LoadIoError> {
    let mut files = Vec::new();
    if dir.is_file() {
        files.push(dir.to_path_buf());
    } else {
        collect_yaml(dir, &mut files)?;
    }
    files.sort();
    let mut loaded = Loaded::default();
    if files.len() > MAX_FLOW_FILES {
        let message = format!(
            "the directory holds {} flow files; at most {MAX_FLOW_FILES} are loaded (is it the right directory?)",
            files.len()
        );
        loaded.diagnostics.push(Diagnostic::error(dir, Mark { line: 1, column: 1 }, "", message));
        return Ok(loaded);
    }
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for file in files {
        let source = match read_flow_file(&file)? {
            Ok(source) => source,
            Err(diagnostic) => {
                loaded.diagnostics.push(diagnostic);
                continue;
            }
        };
        let (flow, diags) = load_str(&file, &source, ctx);
        loaded.diagnostics.extend(diags);
        if let Some(flow) = flow {
            if let Some((_, other)) = names.iter().find(|(n, _)| *n == flow.name) {
                loaded.diagnostics.push(Diagnostic::error(
                    &file,
                    Mark { line: 1, column: 1 },
                    "flow.name",
                    format!("flow `{}` is already defined in {}", flow.name, other.display()),
                ));
                continue;
            }
            names.push((flow.name.clone(), file.clone()));
            loaded.flows.push(flow);
        }
    }
    Ok(loaded)
}

/// Flows one engine loads: each is a task graph with its own workers, so a directory holding
/// more is a mistake (a home directory, a data lake) rather than a deployment.
pub const MAX_FLOW_FILES: usize = 10_000;

/// Flow files are a few KiB; one far larger is not a flow file, and is not read into memory.
pub const MAX_FLOW_FILE_BYTES: u64 = 16 << 20;

/// A flow file's text, or the diagnostic saying why it is not text a flow can be read from.
fn read_flow_file(file: &Path) -> Result<Result<String, Diagnostic>, LoadIoError> {
    let io = |source| LoadIoError { path: file.to_path_buf(), source };
    let len = std::fs::metadata(file).map_err(io)?.len();
    let start = Mark { line: 1, column: 1 };
    if len > MAX_FLOW_FILE_BYTES {
        let message = format!("the file is {len} bytes; a flow file is at most {MAX_FLOW_FILE_BYTES}");
        return Ok(Err(Diagnostic::error(file, start, "", message)));
    }
    let bytes = std::fs::read(file).map_err(io)?;
    Ok(String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // Valid by construction: the prefix before the first bad byte.
        let text = std::str::from_utf8(valid).unwrap_or_default();
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let bad = e.as_bytes()[valid.len()];
        let message = format!("the file is not UTF-8 text: byte 0x{bad:02x} here is not valid UTF-8");
        Diagnostic::error(file, Mark { line, column }, "", message)
    }))
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadIoError> {
    let io = |source| LoadIoError { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Load one flow file. The flow is returned only when it has no errors.
pub fn load_str(file: &Path, source: &str, ctx: &LoadContext<'_>) -> (Option<Flow>, Vec<Diagnostic>) {
    let mut v = Validator { file, ctx, diags: Vec::new() };
    let flow = v.flow(source);
    let flow = if v.diags.iter().any(Diagnostic::is_error) { None } else { flow };
    v.diags.sort_by_key(|d| (d.mark.line, d.mark.column));
    (flow, v.diags)
}

const FLOW_KEYS: &[&str] = &["name", "require_leader_election", "tasks"];

struct Validator<'a> {
    file: &'a Path,
    ctx: &'a LoadContext<'a>,
    diags: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error(&mut self, mark: Mark, key: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(self.file, mark, key, message));
    }

    fn warning(&mut self, mark: Mark, key: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic::warning(self.file, mark, key, message));
    }

    fn de_error(&mut self, fallback: Mark, fallback_key: &str, e: DeError) {
        let key = e.path.unwrap_or_else(|| fallback_key.to_string());
        self.error(e.mark.unwrap_or(fallback), key, e.message);
    }

    fn unknown_key(&mut self, key: &Node, path: &str, allowed: &[&str]) {
        let name = key.as_str().unwrap_or("?");
        let hint =
            did_you_mean(name, allowed.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        self.error(
            key.mark,
            if path.is_empty() { name.to_string() } else { format!("{path}.{name}") },
            format!("unknown key `{name}`{hint}; expected one of: {}", allowed.join(", ")),
        );
    }

    fn flow(&mut self, source: &str) -> Option<Flow> {
        let doc = match yaml::parse(source) {
            Ok(doc) => doc,
            Err(e) => {
                self.error(e.mark, e.key.unwrap_or_default(), e.message);
                return None;
            }
        };
        let NodeValue::Map(top) = &doc.value else {
            self.error(doc.mark, "", format!("a flow file is a map with one key, `flow`; found {}", doc.kind()));
            return None;
        };
        let mut flow_node = None;
        for (k, v) in top {
            if k.as_str() == Some("flow") {
                flow_node = Some(v);
            } else {
                self.unknown_key(k, "", &["flow"]);
            }
        }
        let Some(flow_node) = flow_node else {
            self.error(doc.mark, "flow", "missing required key `flow`");
            return None;
        };
        let NodeValue::Map(entries) = &flow_node.value else {
            self.error(flow_node.mark, "flow", format!("`flow` must be a map; found {}", flow_node.kind()));
            return None;
        };

        let mut name = None;
        let mut leader = false;
        let mut task_nodes = None;
        for (k, v) in entries {
            match k.as_str() {
                Some("name") => match from_node::<String>(v, "flow.name") {
                    Ok(n) if valid_flow_name(&n) => name = Some(n),
                    Ok(n) => self.error(
                        v.mark,
                        "flow.name",
                        format!("flow name `{n}` may use only letters, digits, `_` and `-`"),
                    ),
                    Err(e) => self.de_error(v.mark, "flow.name", e),
                },
                Some("require_leader_election") => match from_node::<bool>(v, "flow.require_leader_election") {
                    Ok(b) => leader = b,
                    Err(e) => self.de_error(v.mark, "flow.require_leader_election", e),
                },
                Some("tasks") => task_nodes = Some(v),
                _ => self.unknown_key(k, "flow", FLOW_KEYS),
            }
        }
        if name.is_none() && flow_node.get("name").is_none() {
            self.error(flow_node.mark, "flow.name", "missing required key `name`");
        }
        let tasks = match task_nodes {
            None => {
                self.error(flow_node.mark, "flow.tasks", "missing required key `tasks`");
                Vec::new()
            }
            Some(node) => match &node.value {
                NodeValue::Seq(items) if items.is_empty() => {
                    self.error(node.mark, "flow.tasks", "a flow needs at least one task");
                    Vec::new()
                }
                NodeValue::Seq(items) => items.iter().enumerate().filter_map(|(i, n)| self.task(i, n)).collect(),
                _ => {
                    self.error(node.mark, "flow.tasks", format!("`tasks` must be a list; found {}", node.kind()));
                    Vec::new()
                }
            },
        };
        let flow_name = name.clone().unwrap_or_default();
        let tasks = self.link(&flow_name, tasks);
        self.env_warnings(&doc);
        Some(Flow { name: name?, file: self.file.to_path_buf(), require_leader_election: leader, tasks })
    }

    /// One `- type: {...}` entry. Returns the task when its own config is sound.
    fn task(&mut self, index: usize, node: &Node) -> Option<ParsedTask> {
        let path = format!("flow.tasks[{index}]");
        let NodeValue::Map(entries) = &node.value else {
            self.error(
                node.mark,
                path,
                format!("a task is a map with one key, its type (e.g. `script:`); found {}", node.kind()),
            );
            return None;
        };
        let [(type_node, body)] = entries.as_slice() else {
            let keys: Vec<_> = entries.iter().filter_map(|(k, _)| k.as_str()).collect();
            self.error(
                node.mark,
                path,
                format!(
                    "a task is a map with exactly one key, its type; found {} keys ({}). Is the indentation of the task's settings right?",
                    keys.len(),
                    keys.join(", ")
                ),
            );
            return None;
        };
        let ty = type_node.as_str().unwrap_or("?").to_string();
        if !tasks::TYPES.iter().any(|t| t.name == ty) {
            let hint = did_you_mean(&ty, tasks::TYPES.iter().map(|t| t.name))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            self.error(
                type_node.mark,
                format!("{path}.{ty}"),
                format!("unknown task type `{ty}`{hint}; known types: {}", type_names(|_| true)),
            );
            return None;
        }
        let path = format!("{path}.{ty}");
        let NodeValue::Map(fields) = &body.value else {
            self.error(body.mark, path, format!("the settings of a `{ty}` task must be a map; found {}", body.kind()));
            return None;
        };

        // The keys every task has are split off; the rest is the task type's own config.
        let mut name = None;
        let mut depends_on = None;
        let mut retry = RetryConfig::default();
        let mut own = Vec::new();
        let mut ok = true;
        for (k, v) in fields {
            let key_path = format!("{path}.{}", k.as_str().unwrap_or("?"));
            match k.as_str() {
                Some("name") => match from_node::<Located<String>>(v, &key_path) {
                    Ok(n) if valid_flow_name(&n) => name = Some(n),
                    Ok(n) => {
                        self.error(
                            n.mark,
                            key_path,
                            format!("task name `{}` may use only letters, digits, `_` and `-`", n.value),
                        );
                        ok = false;
                    }
                    Err(e) => {
                        self.de_error(v.mark, &key_path, e);
                        ok = false;
                    }
                },
                Some("depends_on") => match from_node::<OneOrMany>(v, &key_path) {
                    Ok(d) => depends_on = Some((v.mark, d.0)),
                    Err(e) => {
                        self.de_error(v.mark, &key_path, e);
                        ok = false;
                    }
                },
                Some("retry") => match from_node::<RetryConfig>(v, &key_path) {
                    Ok(r) => retry = r,
                    Err(e) => {
                        self.de_error(v.mark, &key_path, e);
                        ok = false;
                    }
                },
                _ => own.push((k.clone(), v.clone())),
            }
        }
        let Some(name) = name else {
            if ok {
                self.error(type_node.mark, format!("{path}.name"), "missing required key `name`");
            }
            return None;
        };
        // Problems with the task as a whole point at its type key, e.g. `- generate:`.
        let own = Node { mark: type_node.mark, value: NodeValue::Map(own) };
        let kind = self.kind(&ty, &own, &path);
        let kind = kind?;
        ok.then_some(ParsedTask { name, depends_on, retry, kind, mark: type_node.mark, path })
    }

    fn kind(&mut self, ty: &str, node: &Node, path: &str) -> Option<TaskKind> {
        let task_type = tasks::TYPES.iter().find(|t| t.name == ty)?;
        let kind = (task_type.load)(&mut TaskLoader { validator: self, node, path })?;
        debug_assert_eq!(kind.type_name(), task_type.name, "a task type loads its own kind");
        Some(kind)
    }

    fn read_resource(&mut self, r: &Located<ResourceRef>) -> Option<String> {
        let path = match r.path_in(self.ctx.resources_dir) {
            Ok(p) => p,
            Err(e) => {
                self.error(r.mark, format!("{}.resource", r.path), e);
                return None;
            }
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) => {
                self.error(
                    r.mark,
                    format!("{}.resource", r.path),
                    format!("cannot read resource `{}` ({}): {e}", r.resource, path.display()),
                );
                None
            }
        }
    }

    fn query_template(&mut self, q: &Located<ResourceOrInline>) -> Option<Template> {
        let (text, what) = match &q.value {
            ResourceOrInline::Inline(s) => (s.clone(), "inline query".to_string()),
            ResourceOrInline::Resource(r) => {
                let located = Located { mark: q.mark, path: q.path.clone(), value: r.clone() };
                (self.read_resource(&located)?, format!("resource `{}`", r.resource))
            }
        };
        match Template::parse(&text) {
            Ok(t) => {
                for var in t.env_vars() {
                    if (self.ctx.env)(var).is_none() {
                        self.warning(
                            q.mark,
                            q.path.clone(),
                            format!("{what} reads `env.{var}`, which is not set: it renders empty"),
                        );
                    }
                }
                Some(t)
            }
            Err(e) => {
                let line = match &e {
                    TemplateError::Syntax { offset, .. } => text[..*offset].matches('\n').count() + 1,
                    _ => 1,
                };
                self.error(q.mark, q.path.clone(), format!("{what}, line {line}: {e}"));
                None
            }
        }
    }

    fn schema(&mut self, r: &Located<ResourceRef>) -> Option<TableSchema> {
        let text = self.read_resource(r)?;
        match TableSchema::from_json(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(r.mark, format!("{}.resource", r.path), format!("resource `{}`: {e}", r.resource));
                None
            }
        }
    }

    /// Only with a credentials root: without one, validation usually runs where the secrets are not.
    fn credentials_warning(&mut self, node: &Node, path: &str, credentials_path: Option<&str>) {
        let Some(p) = credentials_path else { return };
        if self.ctx.credentials.root().is_none() {
            return;
        }
        let resolved = self.ctx.credentials.resolve(Path::new(p));
        if !resolved.exists() {
            let mark = node.get("credentials_path").map_or(node.mark, |n| n.mark);
            let via =
                if resolved != Path::new(p) { format!(" (read from {})", resolved.display()) } else { String::new() };
            self.warning(
                mark,
                format!("{path}.credentials_path"),
                format!("credentials file `{p}`{via} does not exist yet"),
            );
        }
    }

    /// Resolve dependencies and check names across tasks.
    fn link(&mut self, flow: &str, parsed: Vec<ParsedTask>) -> Vec<Task> {
        let _ = flow;
        let mut tasks: Vec<Task> = Vec::with_capacity(parsed.len());
        let mut seen: HashSet<String> = HashSet::new();
        for (i, p) in parsed.into_iter().enumerate() {
            if !seen.insert(p.name.value.clone()) {
                self.error(
                    p.name.mark,
                    p.name.path.clone(),
                    format!("task name `{}` is used twice in this flow", p.name.value),
                );
                continue;
            }
            let source = tasks::TYPES.iter().any(|t| t.source && t.name == p.kind.type_name());
            if i == 0 && !source {
                self.error(
                    p.mark,
                    p.path.clone(),
                    format!(
                        "the first task must start the flow ({}); `{}` cannot",
                        type_names(|t| t.source),
                        p.kind.type_name()
                    ),
                );
            }
            if i > 0 && source {
                self.error(
                    p.mark,
                    p.path.clone(),
                    format!("`{}` starts a flow and must be its first task", p.kind.type_name()),
                );
            }
            let depends_on = match p.depends_on {
                None => tasks.last().map(|t| vec![t.name.clone()]).unwrap_or_default(),
                Some((mark, deps)) => {
                    let key = format!("{}.depends_on", p.path);
                    for d in &deps {
                        if *d == p.name.value {
                            self.error(mark, key.clone(), format!("task `{d}` cannot depend on itself"));
                        } else if !seen.contains(d) {
                            self.error(
                                mark,
                                key.clone(),
                                format!("`depends_on` names `{d}`, which is not a task before this one"),
                            );
                        }
                    }
                    if deps.is_empty() && i > 0 {
                        self.error(mark, key, "`depends_on` is empty; name the task(s) this one reads from");
                    }
                    deps
                }
            };
            tasks.push(Task { name: p.name.value, mark: p.mark, depends_on, retry: p.retry, kind: p.kind });
        }
        tasks
    }

    /// Unset environment variables in templates render empty; say so, since that can be deliberate
    /// (an empty NATS url selects the embedded bus) or a deployment mistake.
    fn env_warnings(&mut self, node: &Node) {
        let mut stack = vec![(node, String::new())];
        while let Some((n, key)) = stack.pop() {
            match &n.value {
                NodeValue::Scalar(s) if s.text.contains("{{") && !key.ends_with(".code") => {
                    if let Ok(t) = Template::parse(&s.text) {
                        for var in t.env_vars() {
                            if (self.ctx.env)(var).is_none() {
                                self.warning(
                                    n.mark,
                                    key.clone(),
                                    format!("`env.{var}` is not set: `{}` renders it empty", s.text),
                                );
                            }
                        }
                    }
                }
                NodeValue::Scalar(_) => {}
                NodeValue::Seq(items) => {
                    stack.extend(items.iter().enumerate().map(|(i, n)| (n, format!("{key}[{i}]"))))
                }
                NodeValue::Map(entries) => stack.extend(entries.iter().map(|(k, v)| {
                    let name = k.as_str().unwrap_or("?");
                    (v, if key.is_empty() { name.to_string() } else { format!("{key}.{name}") })
                })),
            }
        }
    }
}

/// A task type as flow files know it. Each task folder declares its own (`TYPE` in its `mod.rs`),
/// and `tasks::TYPES` lists them: loading knows task types only through that table.
pub struct TaskType {
    /// As flow files spell it.
    pub name: &'static str,
    /// Starts a flow (a trigger or a subscription): only a flow's first task may be one.
    pub source: bool,
    /// Decodes a task's settings and checks them, reporting every problem where it is written.
    pub load: fn(&mut TaskLoader<'_, '_>) -> Option<TaskKind>,
}

/// What a task type's `load` gets: the task's settings, where they are, and the checks and
/// reports of the flow being loaded.
pub struct TaskLoader<'v, 'a> {
    validator: &'v mut Validator<'a>,
    /// The task's settings (the map under its type key).
    pub node: &'v Node,
    /// Their key path, e.g. `tasks[2].object_store`.
    pub path: &'v str,
}

impl TaskLoader<'_, '_> {
    /// The settings as `T`; a problem is reported and gives `None`.
    pub fn decode<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        match from_node::<T>(self.node, self.path) {
            Ok(c) => Some(c),
            Err(e) => {
                self.validator.de_error(self.node.mark, self.path, e);
                None
            }
        }
    }

    pub fn error(&mut self, mark: Mark, key: impl Into<String>, message: impl Into<String>) {
        self.validator.error(mark, key, message);
    }

    pub fn warning(&mut self, mark: Mark, key: impl Into<String>, message: impl Into<String>) {
        self.validator.warning(mark, key, message);
    }

    /// A schema resource, read and parsed.
    pub fn schema(&mut self, r: &Located<ResourceRef>) -> Option<TableSchema> {
        self.validator.schema(r)
    }

    /// A query, inline or from its resource, as a template.
    pub fn query_template(&mut self, q: &Located<ResourceOrInline>) -> Option<Template> {
        self.validator.query_template(q)
    }

    /// Warns when a credentials file the task names cannot be read.
    pub fn credentials_warning(&mut self, node: &Node, path: &str, credentials_path: Option<&str>) {
        self.validator.credentials_warning(node, path, credentials_path);
    }
}

/// The names of the task types `keep` keeps, comma-separated.
fn type_names(keep: impl Fn(&TaskType) -> bool) -> String {
    tasks::TYPES.iter().filter(|t| keep(t)).map(|t| t.name).collect::<Vec<_>>().join(", ")
}

struct ParsedTask {
    name: Located<String>,
    depends_on: Option<(Mark, Vec<String>)>,
    retry: RetryConfig,
    kind: TaskKind,
    mark: Mark,
    path: String,
}

/// `depends_on: [a, b]` or `depends_on: a`.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::One(s) => Self(vec![s]),
            Raw::Many(v) => Self(v),
        })
    }
}

/// Where `key` is written in a task's settings, or the task itself when it is not.
pub fn at(node: &Node, key: &str) -> Mark {
    node.get(key).map_or(node.mark, |n| n.mark)
}

fn valid_flow_name(n: &str) -> bool {
    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
