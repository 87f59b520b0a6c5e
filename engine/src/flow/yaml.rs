//! A YAML document as a tree of nodes that remember where they came from. Every later check (serde
//! decoding, validation) reports problems at the exact line and column of the offending node.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diagnostic::Mark;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub mark: Mark,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A scalar keeps its text and whether it was quoted: a quoted `"true"` is a string, a plain `true`
/// a boolean, and the type a config field expects decides how plain text is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub quoted: bool,
}

impl Scalar {
    pub fn is_null(&self) -> bool {
        !self.quoted && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Scalar(s) if !s.is_null() => Some(&s.text),
            _ => None,
        }
    }

    /// What kind of node this is, in words for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            NodeValue::Scalar(s) if s.is_null() => "null",
            NodeValue::Scalar(_) => "a scalar",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a map",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub mark: Mark,
    /// The key at fault, when there is one (a duplicate key).
    pub key: Option<String>,
    pub message: String,
}

/// Nodes that aliases may add to a document, all aliases together. A flow file's few anchors
/// add hundreds; a "billion laughs" document (aliases of aliases) would add billions, and is
/// refused at the alias that passes the bound instead of being expanded.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Parse one YAML document. An empty document is a null node; a byte-order mark (which editors on
/// Windows write) is not part of it.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        mark: mark(e.marker()),
        key: None,
        message: format!("YAML syntax error: {}", e.info()),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node {
        mark: Mark { line: 1, column: 1 },
        value: NodeValue::Scalar(Scalar { text: String::new(), quoted: false }),
    }))
}

fn mark(m: &Marker) -> Mark {
    Mark { line: m.line(), column: m.col() + 1 }
}

enum Frame {
    Seq(Mark, usize, Vec<Node>),
    Map(Mark, usize, Vec<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Each anchored node, with its size in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes added by aliases so far.
    aliased: usize,
    /// Documents begun; a second is an error, not silently ignored.
    documents: usize,
    root: Option<Node>,
    error: Option<SyntaxError>,
}

impl Node {
    /// Nodes in this tree, itself included.
    fn size(&self) -> usize {
        match &self.value {
            NodeValue::Scalar(_) => 1,
            NodeValue::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            NodeValue::Map(entries) => 1 + entries.iter().map(|(k, v)| k.size() + v.size()).sum::<usize>(),
        }
    }
}

impl Builder {
    /// Keeps the first error: later ones are usually its echoes.
    fn fail(&mut self, mark: Mark, key: Option<String>, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { mark, key, message });
        }
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = node.size();
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(_, _, items) | Frame::Map(_, _, items)) => items.push(node),
            None => self.root = Some(node),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        let at = mark(&marker);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                let value = NodeValue::Scalar(Scalar { text, quoted });
                self.push(Node { mark: at, value }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(at, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(at, anchor, Vec::new())),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(m, anchor, items)) = self.stack.pop() {
                    self.push(Node { mark: m, value: NodeValue::Seq(items) }, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(m, anchor, items)) = self.stack.pop() {
                    let mut entries = Vec::with_capacity(items.len() / 2);
                    let mut keys = std::collections::HashSet::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        if let Some(key) = k.as_str()
                            && !keys.insert(key.to_string())
                        {
                            self.fail(k.mark, Some(key.to_string()), format!("duplicate key `{key}`"));
                        }
                        entries.push((k, v));
                    }
                    // A map is "where its first key is": that is where a reader looks for it.
                    let m = entries.first().map_or(m, |(k, _)| k.mark);
                    self.push(Node { mark: m, value: NodeValue::Map(entries) }, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((_, size)) if self.aliased + size > MAX_ALIAS_NODES => self.fail(
                    at,
                    None,
                    format!(
                        "aliases here expand the document past {MAX_ALIAS_NODES} nodes; \
                         it is refused rather than expanded (an alias bomb?)"
                    ),
                ),
                Some((node, size)) => {
                    self.aliased += size;
                    let mut node = node.clone();
                    node.mark = at;
                    self.push(node, 0);
                }
                None => self.fail(at, None, "unknown alias".into()),
            },
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(at, None, "a second YAML document starts here; a flow file holds one".into());
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lines_and_columns() {
        let doc = parse("flow:\n  name: x\n  tasks:\n    - generate:\n        cron: \"* * * * *\"\n").unwrap();
        let flow = doc.get("flow").unwrap();
        let name = flow.get("name").unwrap();
        assert_eq!(name.mark, Mark { line: 2, column: 9 });
        let NodeValue::Seq(tasks) = &flow.get("tasks").unwrap().value else { panic!() };
        let cron = tasks[0].get("generate").unwrap().get("cron").unwrap();
        assert_eq!(cron.mark, Mark { line: 5, column: 15 });
        assert_eq!(cron.as_str(), Some("* * * * *"));
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let doc = parse("a: \"true\"\nb: true\nc: ~\n").unwrap();
        let NodeValue::Scalar(a) = &doc.get("a").unwrap().value else { panic!() };
        assert!(a.quoted);
        assert!(doc.get("c").unwrap().as_str().is_none());
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_have_a_place() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.mark.line >= 1, "{err:?}");
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.mark, Mark { line: 3, column: 1 });
        assert!(err.message.contains("duplicate key `a`"));
    }

    #[test]
    fn an_alias_bomb_is_refused_not_expanded() {
        let mut doc = "a: &a [x, x, x, x, x, x, x, x, x, x]\n".to_string();
        for (p, q) in "abcdefghi".chars().zip("bcdefghij".chars()) {
            doc.push_str(&format!("{q}: &{q} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"));
        }
        let started = std::time::Instant::now();
        let err = parse(&doc).unwrap_err();
        assert!(err.message.contains("past 100000 nodes"), "{err:?}");
        assert_eq!(err.mark.line, 5, "the first alias past the bound (ten of 11,111 nodes each): {err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_document() {
        let doc = parse("\u{feff}flow:\n  name: x\n").unwrap();
        assert_eq!(doc.get("flow").unwrap().get("name").unwrap().mark, Mark { line: 2, column: 9 });
    }

    #[test]
    fn a_map_of_many_keys_is_checked_for_duplicates_in_linear_time() {
        let doc: String = (0..200_000).map(|i| format!("k{i}: {i}\n")).collect();
        let started = std::time::Instant::now();
        assert!(parse(&doc).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn aliases_resolve_to_their_anchor() {
        let doc = parse("a: &x {k: 1}\nb: *x\n").unwrap();
        assert_eq!(doc.get("b").unwrap().get("k").unwrap().as_str(), Some("1"));
    }
}
