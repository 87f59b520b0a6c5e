//! A parsed query, before it meets a schema.

use chrono::NaiveDate;

use super::lexer::{CmpOp, StrChar};

/// A dot path as written, e.g. `Owner.Name`; `pos` is its byte offset, for error positions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    pub(crate) parts: Vec<String>,
    pub(crate) pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Str(Vec<StrChar>),
    Num(f64),
    Date(NaiveDate),
    /// Milliseconds since the epoch.
    DateTime(i64),
}

impl Literal {
    pub(crate) fn text(chars: &[StrChar]) -> String {
        chars.iter().map(|c| c.c).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp { field: Path, op: CmpOp, value: Literal, value_pos: usize },
    In { field: Path, negated: bool, values: Vec<Literal>, value_pos: usize },
    Like { field: Path, pattern: Vec<StrChar> },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderItem {
    pub(crate) field: Path,
    pub(crate) descending: bool,
    /// Salesforce's default: nulls first when ascending, last when descending.
    pub(crate) nulls_last: bool,
}
