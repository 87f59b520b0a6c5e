//! serde decoding of a [`Node`] tree. Config structs stay plain serde types with
//! `deny_unknown_fields`, while every error comes back pinned to the node and key that caused it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::diagnostic::{Mark, did_you_mean};
use super::yaml::{Node, NodeValue, Scalar};

/// A decoding error, with the place and key path of the innermost node that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub mark: Option<Mark>,
    pub path: Option<String>,
    pub message: String,
}

impl DeError {
    fn at(mut self, mark: Mark, path: &str) -> Self {
        if self.mark.is_none() {
            self.mark = Some(mark);
            self.path = Some(path.to_string());
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// Keys every task accepts besides its own; offered in did-you-mean hints for task configs.
pub const COMMON_TASK_KEYS: &[&str] = &["name", "depends_on", "retry"];

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self { mark: None, path: None, message: msg.to_string() }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = did_you_mean(field, expected.iter().copied().chain(COMMON_TASK_KEYS.iter().copied()))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Self::custom(format!("unknown key `{field}`{hint}; expected one of: {}", expected.join(", ")))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let hint = did_you_mean(variant, expected.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Self::custom(format!("invalid value `{variant}`{hint}; expected one of: {}", expected.join(", ")))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing required key `{field}`"))
    }
}

/// Decode `T` from a node; `path` names the node for messages (e.g. `flow.tasks[0].generate`).
pub fn from_node<'a, T: Deserialize<'a>>(node: &'a Node, path: &str) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, path: path.to_string() })
}

pub(crate) const LOCATED: &str = "$__bulkflow_located";
pub(crate) const LOCATED_FIELDS: &[&str] = &["$__line", "$__column", "$__path", "$__value"];

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDe<'a> {
    fn scalar(&self) -> Option<&'a Scalar> {
        match &self.node.value {
            NodeValue::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn invalid<V>(&self, expected: &str) -> Result<V, DeError> {
        let found = match &self.node.value {
            NodeValue::Scalar(s) if s.is_null() => "nothing (null)".to_string(),
            NodeValue::Scalar(s) => format!("`{}`", s.text),
            _ => self.node.kind().to_string(),
        };
        Err(de::Error::custom(format!("expected {expected}, found {found}")))
    }

    fn locate<V>(&self, r: Result<V, DeError>) -> Result<V, DeError> {
        r.map_err(|e| e.at(self.node.mark, &self.path))
    }

    fn text(&self, expected: &str) -> Result<&'a str, DeError> {
        match self.scalar() {
            Some(s) if !s.is_null() => Ok(&s.text),
            _ => self.invalid(expected),
        }
    }

    fn parse<T: std::str::FromStr>(&self, expected: &str) -> Result<T, DeError> {
        let text = self.text(expected)?;
        match self.scalar() {
            Some(s) if s.quoted => self.invalid(expected),
            _ => text.trim().parse().or_else(|_| self.invalid(expected)),
        }
    }
}

macro_rules! number {
    ($method:ident, $visit:ident, $ty:ty, $what:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let r = self.parse::<$ty>($what).and_then(|n| visitor.$visit(n));
            self.locate(r)
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Scalar(s) if s.quoted => visitor.visit_borrowed_str(&s.text),
            NodeValue::Scalar(s) if s.is_null() => visitor.visit_unit(),
            NodeValue::Scalar(s) => match s.text.as_str() {
                "true" | "True" | "TRUE" => visitor.visit_bool(true),
                "false" | "False" | "FALSE" => visitor.visit_bool(false),
                t => {
                    if let Ok(i) = t.parse::<i64>() {
                        visitor.visit_i64(i)
                    } else if let Ok(f) = t.parse::<f64>() {
                        visitor.visit_f64(f)
                    } else {
                        visitor.visit_borrowed_str(&s.text)
                    }
                }
            },
            NodeValue::Seq(items) => {
                visitor.visit_seq(SeqDe { items: items.iter(), index: 0, path: self.path.clone() })
            }
            NodeValue::Map(entries) => visitor.visit_map(MapDe::new(entries, self.path.clone())),
        };
        self.locate(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar().filter(|s| !s.quoted).map(|s| s.text.as_str()) {
            Some("true" | "True" | "TRUE") => visitor.visit_bool(true),
            Some("false" | "False" | "FALSE") => visitor.visit_bool(false),
            _ => self.invalid("true or false"),
        };
        self.locate(r)
    }

    number!(deserialize_i8, visit_i8, i8, "an integer");
    number!(deserialize_i16, visit_i16, i16, "an integer");
    number!(deserialize_i32, visit_i32, i32, "an integer");
    number!(deserialize_i64, visit_i64, i64, "an integer");
    number!(deserialize_u8, visit_u8, u8, "a non-negative integer");
    number!(deserialize_u16, visit_u16, u16, "a non-negative integer");
    number!(deserialize_u32, visit_u32, u32, "a non-negative integer");
    number!(deserialize_u64, visit_u64, u64, "a non-negative integer");
    number!(deserialize_f32, visit_f32, f32, "a number");
    number!(deserialize_f64, visit_f64, f64, "a number");

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = self.text("a string").and_then(|t| visitor.visit_borrowed_str(t));
        self.locate(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) if s.is_null() => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar() {
            Some(s) if s.is_null() => visitor.visit_unit(),
            _ => self.invalid("nothing"),
        };
        self.locate(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Seq(items) => {
                visitor.visit_seq(SeqDe { items: items.iter(), index: 0, path: self.path.clone() })
            }
            _ => self.invalid("a list"),
        };
        self.locate(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Map(entries) => visitor.visit_map(MapDe::new(entries, self.path.clone())),
            _ => self.invalid("a map"),
        };
        self.locate(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == LOCATED {
            return visitor.visit_map(LocatedDe { de: Some(self), step: 0 });
        }
        let _ = fields;
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Scalar(s) if !s.is_null() => visitor.visit_enum(s.text.as_str().into_deserializer()),
            _ => self.invalid("one of the allowed values"),
        };
        self.locate(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqDe<I> {
    items: I,
    index: usize,
    path: String,
}

impl<'de, I: Iterator<Item = &'de Node>> de::SeqAccess<'de> for SeqDe<I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else { return Ok(None) };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        // Errors raised by a type's own Deserialize after decoding (a bad duration, a bad cron
        // expression) are pinned here, to the element they came from.
        seed.deserialize(NodeDe { node, path: path.clone() }).map(Some).map_err(|e| e.at(node.mark, &path))
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
    value_path: String,
    path: String,
}

impl<'a> MapDe<'a> {
    fn new(entries: &'a [(Node, Node)], path: String) -> Self {
        Self { entries: entries.iter(), value: None, value_path: String::new(), path }
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let name = key.as_str().unwrap_or("?");
        self.value_path = if self.path.is_empty() { name.to_string() } else { format!("{}.{name}", self.path) };
        self.value = Some(value);
        seed.deserialize(NodeDe { node: key, path: self.value_path.clone() })
            .map(Some)
            .map_err(|e| e.at(key.mark, &self.value_path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.value.take().ok_or_else(|| de::Error::custom("value requested before its key"))?;
        let path = std::mem::take(&mut self.value_path);
        seed.deserialize(NodeDe { node, path: path.clone() }).map_err(|e| e.at(node.mark, &path))
    }
}

/// Feeds [`super::located::Located`] the node's place alongside its decoded value.
struct LocatedDe<'a> {
    de: Option<NodeDe<'a>>,
    step: usize,
}

impl<'de> de::MapAccess<'de> for LocatedDe<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        match LOCATED_FIELDS.get(self.step) {
            Some(field) => seed.deserialize(field.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let step = self.step;
        self.step += 1;
        let de = self.de.as_ref().ok_or_else(|| de::Error::custom("located value read twice"))?;
        match step {
            0 => seed.deserialize((de.node.mark.line as u64).into_deserializer()),
            1 => seed.deserialize((de.node.mark.column as u64).into_deserializer()),
            2 => seed.deserialize(de.path.as_str().into_deserializer()),
            _ => {
                let de = self.de.take().ok_or_else(|| de::Error::custom("located value read twice"))?;
                seed.deserialize(de)
            }
        }
    }
}
