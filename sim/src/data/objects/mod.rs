//! The simulated objects: each is a list of fields, and each field a pure generator from the
//! record's state. Nothing but that state is stored per record; every value is rendered on demand.

mod account;
mod common;
mod contact;
mod opportunity;
mod user;
mod words;

use serde::{Deserialize, Serialize};

use super::ids;
use super::rng;
use super::schema::{FieldDef, FieldType, ObjectSchema};
use super::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum ObjectKind {
    Account,
    Contact,
    Opportunity,
    User,
}

impl ObjectKind {
    pub(crate) const ALL: [Self; 4] = [Self::Account, Self::Contact, Self::Opportunity, Self::User];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Account => "Account",
            Self::Contact => "Contact",
            Self::Opportunity => "Opportunity",
            Self::User => "User",
        }
    }

    pub(crate) fn key_prefix(self) -> &'static str {
        match self {
            Self::Account => "001",
            Self::Contact => "003",
            Self::Opportunity => "006",
            Self::User => "005",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn fields(self) -> &'static [FieldSpec] {
        match self {
            Self::Account => account::FIELDS,
            Self::Contact => contact::FIELDS,
            Self::Opportunity => opportunity::FIELDS,
            Self::User => user::FIELDS,
        }
    }

    fn compound_fields(self) -> &'static [&'static str] {
        match self {
            Self::Account => &["BillingAddress", "ShippingAddress"],
            Self::Contact => &["MailingAddress", "OtherAddress"],
            Self::Opportunity => &[],
            Self::User => &["Address"],
        }
    }

    /// Whether the change generator touches this object: users are the org's staff, not data.
    pub(crate) fn changes(self) -> bool {
        self != Self::User
    }

    pub(crate) fn schema(self) -> ObjectSchema {
        ObjectSchema {
            name: self.name().to_owned(),
            key_prefix: self.key_prefix().to_owned(),
            fields: self.fields().iter().map(FieldSpec::def).collect(),
            compound_fields: self.compound_fields().iter().map(|&f| f.to_owned()).collect(),
        }
    }
}

/// What rendering needs besides a record's own state; fixed when the dataset is generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GenContext {
    pub(crate) seed: u64,
    /// The configured start time, in seconds since the epoch.
    pub(crate) start: i64,
    /// How far before `start` the seeded modification times reach, in seconds.
    pub(crate) spread: i64,
    /// Record counts at generation: parents are drawn from these, so a record's parent never
    /// depends on later inserts.
    pub(crate) base_counts: [u32; 4],
    /// Per-object offset of the id numbers, so ids look like a real org's and differ by seed.
    pub(crate) id_bases: [u64; 4],
}

impl GenContext {
    pub(crate) fn new(seed: u64, start: i64, spread: i64, base_counts: [u32; 4]) -> Self {
        let id_bases = ObjectKind::ALL.map(|k| {
            // 62^5 times a factor: letters land in the middle of the number, as in real ids.
            916_132_832 * (1 + rng::hash(&[seed, 0x1d, k as u64]) % 4096)
        });
        Self { seed, start, spread, base_counts, id_bases }
    }

    pub(crate) fn record_id(&self, kind: ObjectKind, idx: u32) -> String {
        ids::record_id(kind.key_prefix(), self.id_bases[kind.index()] + u64::from(idx))
    }
}

/// All that is stored per record: rendering derives everything else from it and the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordState {
    pub(crate) idx: u32,
    /// Bumped by each modification; version-dependent fields re-derive from it.
    pub(crate) version: u32,
    /// CreatedDate, seconds since the epoch.
    pub(crate) created: i64,
    /// LastModifiedDate, seconds since the epoch.
    pub(crate) modified: i64,
    /// 0 while the record lives; when deleted, the deletion time in seconds since the epoch,
    /// positive while it is in the Recycle Bin and negated once the bin was emptied (a purged
    /// record is gone from every query but still reported by the `deleted` resource).
    #[serde(default)]
    pub(crate) deleted: i64,
}

impl RecordState {
    pub(crate) fn is_live(&self) -> bool {
        self.deleted == 0
    }

    /// In the Recycle Bin: `queryAll` still returns it, with `IsDeleted` true.
    pub(crate) fn is_recycled(&self) -> bool {
        self.deleted > 0
    }

    /// When it was deleted, recycled or purged.
    pub(crate) fn deleted_at(&self) -> Option<i64> {
        (self.deleted != 0).then_some(self.deleted.abs())
    }
}

/// One record under rendering.
pub(crate) struct Rec<'a> {
    pub(crate) ctx: &'a GenContext,
    pub(crate) kind: ObjectKind,
    pub(crate) st: &'a RecordState,
}

impl Rec<'_> {
    /// A hash stable across modifications, for fields that never change.
    fn fixed(&self, tag: u64) -> u64 {
        rng::hash(&[self.ctx.seed, self.kind as u64, u64::from(self.st.idx), tag])
    }

    /// A hash that changes with each modification, for fields an update may touch.
    fn varying(&self, tag: u64) -> u64 {
        rng::hash(&[self.ctx.seed, self.kind as u64, u64::from(self.st.idx), tag, u64::from(self.st.version)])
    }
}

fn pick<T: Copy>(h: u64, items: &[T]) -> T {
    items[(h % items.len() as u64) as usize]
}

/// True with probability `percent`/100, from bits of `h` that `pick` on the same hash barely uses.
fn chance(h: u64, percent: u64) -> bool {
    (h >> 40) % 100 < percent
}

pub(crate) enum Gen {
    Value(fn(&Rec<'_>) -> Value),
    /// A lookup: the parent's index (or none), from which the id is rendered.
    Ref {
        to: ObjectKind,
        relationship: &'static str,
        parent: fn(&Rec<'_>) -> Option<u32>,
    },
}

pub(crate) struct FieldSpec {
    pub(crate) name: &'static str,
    pub(crate) ty: FieldType,
    pub(crate) nullable: bool,
    pub(crate) source: Gen,
}

impl FieldSpec {
    const fn value(name: &'static str, ty: FieldType, nullable: bool, generate: fn(&Rec<'_>) -> Value) -> Self {
        Self { name, ty, nullable, source: Gen::Value(generate) }
    }

    const fn reference(
        name: &'static str,
        nullable: bool,
        to: ObjectKind,
        relationship: &'static str,
        parent: fn(&Rec<'_>) -> Option<u32>,
    ) -> Self {
        Self { name, ty: FieldType::Reference, nullable, source: Gen::Ref { to, relationship, parent } }
    }

    fn def(&self) -> FieldDef {
        let (reference_to, relationship_name) = match &self.source {
            Gen::Ref { to, relationship, .. } => (Some(to.name().to_owned()), Some((*relationship).to_owned())),
            Gen::Value(_) => (None, None),
        };
        FieldDef { name: self.name.to_owned(), ty: self.ty, nullable: self.nullable, reference_to, relationship_name }
    }
}

/// The value of field number `field` (its position in `kind.fields()`).
pub(crate) fn field_value(rec: &Rec<'_>, field: usize) -> Value {
    match &rec.kind.fields()[field].source {
        Gen::Value(generate) => generate(rec),
        Gen::Ref { to, parent, .. } => match parent(rec) {
            Some(idx) => Value::Text(rec.ctx.record_id(*to, idx)),
            None => Value::Null,
        },
    }
}

/// The parent's kind and index through lookup field number `field`; `None` for a null lookup or
/// a field that is no lookup.
pub(crate) fn parent_of(rec: &Rec<'_>, field: usize) -> Option<(ObjectKind, u32)> {
    match &rec.kind.fields()[field].source {
        Gen::Ref { to, parent, .. } => parent(rec).map(|idx| (*to, idx)),
        Gen::Value(_) => None,
    }
}

/// The state of a seeded record.
pub(crate) fn initial_state(ctx: &GenContext, kind: ObjectKind, idx: u32) -> RecordState {
    match kind {
        ObjectKind::User => user::initial_state(ctx, idx),
        _ => common::initial_state(ctx, kind, idx),
    }
}
