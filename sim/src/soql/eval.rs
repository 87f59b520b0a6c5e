//! Evaluating a bound predicate against one row, with SOQL's null rules: `= null` and `!= null`
//! test for null; `!=` and `<>` also match nulls (unlike SQL); every other comparison, `IN`,
//! `NOT IN` and `LIKE` are false on a null.

use std::cmp::Ordering;

use super::lexer::CmpOp;
use super::resolve::{Operand, Pred, Test};
use super::row::RowView;
use crate::data::FieldType;
use crate::data::value::Value;

pub(crate) fn matches(pred: &Pred, row: &RowView<'_>) -> bool {
    match pred {
        Pred::And(terms) => terms.iter().all(|t| matches(t, row)),
        Pred::Or(terms) => terms.iter().any(|t| matches(t, row)),
        Pred::Not(inner) => !matches(inner, row),
        Pred::Test { column, ty, test } => test_value(&row.value(*column), *ty, test),
    }
}

fn test_value(value: &Value, ty: FieldType, test: &Test) -> bool {
    if *value == Value::Null {
        return match test {
            Test::IsNull => true,
            Test::Cmp(CmpOp::Ne, _) => true,
            Test::In { with_null, negated, .. } => *with_null && !negated,
            Test::NotNull | Test::Cmp(..) | Test::Like(_) => false,
        };
    }
    match test {
        Test::IsNull => false,
        Test::NotNull => true,
        Test::Cmp(op, operand) => compare(value, ty, operand).is_some_and(|o| holds(*op, o)),
        Test::In { values, negated, .. } => {
            let found = values.iter().any(|v| compare(value, ty, v) == Some(Ordering::Equal));
            found != *negated
        }
        Test::Like(pattern) => match value {
            Value::Text(text) => pattern.matches(text),
            _ => false,
        },
    }
}

fn holds(op: CmpOp, ordering: Ordering) -> bool {
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    }
}

/// `value` against `operand`; `None` when they cannot be compared, which resolution prevents.
fn compare(value: &Value, ty: FieldType, operand: &Operand) -> Option<Ordering> {
    match (value, operand) {
        // Ids compare on their 15 case-sensitive characters; the suffix only repeats them.
        (Value::Text(id), Operand::Id(other)) => {
            Some(id.as_bytes()[..15.min(id.len())].cmp(&other.as_bytes()[..15.min(other.len())]))
        }
        (Value::Text(text), Operand::Text(other)) if ty != FieldType::Id => {
            Some(text.to_lowercase().as_str().cmp(other.as_str()))
        }
        (Value::Number(n), Operand::Num(other)) => n.partial_cmp(other),
        (Value::Int(n), Operand::Num(other)) => (*n as f64).partial_cmp(other),
        (Value::Bool(b), Operand::Bool(other)) => Some(b.cmp(other)),
        (Value::Date(d), Operand::Date(other)) => Some(d.cmp(other)),
        (Value::DateTime(secs), Operand::DateTime(ms)) => Some((secs * 1000).cmp(ms)),
        _ => None,
    }
}
