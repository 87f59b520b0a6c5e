//! Running a plan over the dataset and holding the snapshot of its rows.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::eval;
use super::resolve::{Column, Plan};
use super::row::{RowView, fill_slots};
use super::sort;
use crate::data::objects::{GenContext, ObjectKind, RecordState};
use crate::data::{Dataset, FieldType};

/// The rows of an executed query, frozen at execution: each row is kept as the states of the
/// records it reads (24 bytes each), and cells are rendered from them on demand, so a result
/// renders byte-identically however the dataset changes later, and a million one-object rows
/// take 24 MB.
#[derive(Debug, Clone)]
pub struct ResultSet {
    ctx: Arc<GenContext>,
    object: String,
    headers: Vec<String>,
    columns: Vec<Column>,
    /// The object of each slot; slot 0 is the queried object.
    kinds: Vec<ObjectKind>,
    /// `kinds.len()` states per row.
    states: Vec<RecordState>,
}

impl ResultSet {
    /// Header names in SELECT order, with canonical field case, e.g. `Owner.Name`.
    pub fn columns(&self) -> &[String] {
        &self.headers
    }

    /// The queried object, in canonical case (the job info's `object`).
    pub fn object(&self) -> &str {
        &self.object
    }

    pub fn len(&self) -> usize {
        self.states.len() / self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The cells of row `i` as Bulk CSV text, `None` for null (including a null parent).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn row(&self, i: usize) -> Vec<Option<String>> {
        let width = self.kinds.len();
        let view = RowView { ctx: &self.ctx, kinds: &self.kinds, states: &self.states[i * width..(i + 1) * width] };
        self.columns.iter().map(|&c| view.value(c).to_csv()).collect()
    }
}

pub(crate) fn run(plan: &Plan, data: &Dataset, scope: super::Scope) -> ResultSet {
    let kinds: Vec<ObjectKind> = plan.slots.iter().map(|s| s.kind).collect();
    let width = kinds.len();
    let ctx = data.ctx();
    let mut states: Vec<RecordState> = Vec::new();
    let mut slots = Vec::with_capacity(width);
    let seen = |st: &RecordState| st.is_live() || (scope == super::Scope::WithRecycled && st.is_recycled());
    for &root in data.states(plan.kind).iter().filter(|st| seen(st)) {
        fill_slots(data, &plan.slots, root, &mut slots);
        let keep = plan
            .filter
            .as_ref()
            .is_none_or(|pred| eval::matches(pred, &RowView { ctx, kinds: &kinds, states: &slots }));
        if keep {
            states.extend_from_slice(&slots);
            // Without ORDER BY the first LIMIT matches are the answer; no need to scan on.
            if plan.order.is_empty() && plan.limit.is_some_and(|l| (states.len() / width) as u64 >= l) {
                break;
            }
        }
    }
    let rows = states.len() / width;
    let mut order: Vec<usize> = if plan.order.is_empty() {
        (0..rows).collect()
    } else {
        let key_types: Vec<FieldType> =
            plan.order.iter().map(|k| field_type(data, kinds[k.column.slot], k.column.field)).collect();
        sort::order_rows(&plan.order, &key_types, rows, |r| RowView {
            ctx,
            kinds: &kinds,
            states: &states[r * width..(r + 1) * width],
        })
    };
    let limit = plan.limit.map_or(rows, |l| usize::try_from(l).unwrap_or(usize::MAX).min(rows));
    order.truncate(limit);
    let states = if plan.order.is_empty() {
        states.truncate(limit * width);
        states.shrink_to_fit();
        states
    } else {
        order.iter().flat_map(|&r| states[r * width..(r + 1) * width].iter().copied()).collect()
    };
    ResultSet {
        ctx: Arc::clone(ctx),
        object: plan.kind.name().to_owned(),
        headers: plan.headers.clone(),
        columns: plan.columns.clone(),
        kinds,
        states,
    }
}

fn field_type(data: &Dataset, kind: ObjectKind, field: usize) -> FieldType {
    data.schema(kind.name()).map_or(FieldType::String, |s| s.fields[field].ty)
}

/// The persisted form; checked on load so a corrupt file cannot make `row` panic.
#[derive(Serialize, Deserialize)]
struct ResultSetRepr {
    ctx: GenContext,
    object: String,
    headers: Vec<String>,
    columns: Vec<Column>,
    kinds: Vec<ObjectKind>,
    states: Vec<RecordState>,
}

impl Serialize for ResultSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Ref<'a> {
            ctx: &'a GenContext,
            object: &'a str,
            headers: &'a [String],
            columns: &'a [Column],
            kinds: &'a [ObjectKind],
            states: &'a [RecordState],
        }
        Ref {
            ctx: &self.ctx,
            object: &self.object,
            headers: &self.headers,
            columns: &self.columns,
            kinds: &self.kinds,
            states: &self.states,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ResultSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = ResultSetRepr::deserialize(deserializer)?;
        let width = repr.kinds.len();
        let columns_ok =
            repr.columns.iter().all(|c| repr.kinds.get(c.slot).is_some_and(|k| c.field < k.fields().len()));
        if width == 0 || repr.states.len() % width != 0 || !columns_ok || repr.headers.len() != repr.columns.len() {
            return Err(serde::de::Error::custom("inconsistent result set"));
        }
        Ok(ResultSet {
            ctx: Arc::new(repr.ctx),
            object: repr.object,
            headers: repr.headers,
            columns: repr.columns,
            kinds: repr.kinds,
            states: repr.states,
        })
    }
}
