//! A row: the root record and the parents its dot paths reach, as record states. Rendering a
//! cell derives the value from the state, so a snapshot of states is a snapshot of the row.

use std::cmp::Ordering;

use chrono::Datelike as _;

use super::resolve::{Column, Slot};
use crate::data::Dataset;
use crate::data::objects::{self, GenContext, ObjectKind, Rec, RecordState};
use crate::data::value::Value;

/// Marks a slot whose lookup is null.
pub(crate) const NO_RECORD: RecordState =
    RecordState { idx: u32::MAX, version: 0, created: 0, modified: 0, deleted: 0 };

pub(crate) struct RowView<'a> {
    pub(crate) ctx: &'a GenContext,
    pub(crate) kinds: &'a [ObjectKind],
    pub(crate) states: &'a [RecordState],
}

impl RowView<'_> {
    pub(crate) fn value(&self, column: Column) -> Value {
        let st = &self.states[column.slot];
        if st.idx == NO_RECORD.idx {
            return Value::Null;
        }
        let rec = Rec { ctx: self.ctx, kind: self.kinds[column.slot], st };
        objects::field_value(&rec, column.field)
    }
}

/// Fills `out` with the states of every slot for the root record `root`, following lookups in
/// the live dataset.
pub(crate) fn fill_slots(data: &Dataset, slots: &[Slot], root: RecordState, out: &mut Vec<RecordState>) {
    out.clear();
    out.push(root);
    for slot in &slots[1..] {
        let (from, field) = slot.from.unwrap_or((0, 0));
        let child = out[from];
        let parent = if child.idx == NO_RECORD.idx {
            None
        } else {
            let rec = Rec { ctx: data.ctx(), kind: slots[from].kind, st: &child };
            objects::parent_of(&rec, field).and_then(|(kind, idx)| data.states(kind).get(idx as usize).copied())
        };
        out.push(parent.unwrap_or(NO_RECORD));
    }
}

/// A sortable form of a value. Text sorts case-insensitively, as Salesforce's collation does.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub(crate) enum SortValue {
    Null,
    Bool(bool),
    Num(f64),
    Text(String),
}

impl SortValue {
    pub(crate) fn of(value: Value, case_sensitive: bool) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Int(i) => Self::Num(i as f64),
            Value::Number(n) => Self::Num(n),
            Value::Date(d) => Self::Num(f64::from(d.num_days_from_ce())),
            Value::DateTime(secs) => Self::Num(secs as f64),
            Value::Text(text) if case_sensitive => Self::Text(text),
            Value::Text(text) => Self::Text(text.to_lowercase()),
        }
    }

    pub(crate) fn compare(&self, other: &Self) -> Ordering {
        self.partial_cmp(other).unwrap_or(Ordering::Equal)
    }
}
