//! The simulated org's data: Account, Contact, Opportunity and User records, seeded
//! deterministically and changed over time.
//!
//! Only a 24-byte state per record is stored (index, version, created and modified times); every
//! field value is derived on demand from `(seed, object, index, version)`. A million accounts are
//! thus 24 MB, generate in milliseconds, and persist as the spec plus the list of change batches.

mod changes;
pub mod ids;
pub(crate) mod objects;
mod persist;
mod rng;
mod schema;
pub(crate) mod value;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use persist::{ChangeBatch, DatasetState};
pub use schema::{FieldDef, FieldType, ObjectSchema};

use objects::{GenContext, ObjectKind, RecordState};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Records per object, e.g. `("Account", 10000)`. `User` may be listed to change the size of
    /// the staff (default [`DataSpec::DEFAULT_USERS`]); objects not listed are empty.
    pub records: Vec<(String, usize)>,
    pub seed: u64,
    /// Seeded modification times fall in `[start - spread, start)`; truncated to whole seconds.
    pub start: DateTime<Utc>,
    pub spread: Duration,
}

impl DataSpec {
    /// One hour short of a day, so that a 24-hour window ending at the start covers every record.
    pub const DEFAULT_SPREAD: Duration = Duration::from_secs(23 * 3600);
    pub const DEFAULT_USERS: usize = 8;

    pub fn new(records: Vec<(String, usize)>, seed: u64, start: DateTime<Utc>) -> Self {
        Self { records, seed, start, spread: Self::DEFAULT_SPREAD }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("the simulator has no object '{0}' (it has Account, Contact, Opportunity and User)")]
    UnknownObject(String),
    #[error("{count} {object} records are more than the simulator holds (at most {max})")]
    TooManyRecords { object: String, count: usize, max: usize },
}

/// The simulator holds at most this many records per object, far beyond any test's needs and
/// within the 32-bit index each record's state carries.
pub const MAX_RECORDS: usize = 1 << 30;

struct ObjectData {
    schema: ObjectSchema,
    states: Vec<RecordState>,
}

/// The org's data. Cheap to keep, cheap to persist: see the module docs.
pub struct Dataset {
    spec: DataSpec,
    ctx: Arc<GenContext>,
    /// Indexed by [`ObjectKind::index`].
    objects: Vec<ObjectData>,
    changes: Vec<ChangeBatch>,
    /// Counts single modifications and inserts; each draws its randomness from it.
    change_seq: u64,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<_> = self.objects.iter().map(|o| (&o.schema.name, o.states.len())).collect();
        f.debug_struct("Dataset")
            .field("spec", &self.spec)
            .field("counts", &counts)
            .field("change_batches", &self.changes.len())
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// Generates the data, skipping (with a warning) objects the simulator does not have; see
    /// [`Dataset::try_generate`] to refuse them instead.
    pub fn generate(spec: &DataSpec) -> Dataset {
        let mut known = spec.clone();
        known.records.retain(|(name, count)| {
            let ok = ObjectKind::from_name(name).is_some() && *count <= MAX_RECORDS;
            if !ok {
                tracing::warn!(object = %name, count, "skipping records the simulator cannot seed");
            }
            ok
        });
        Self::build(known)
    }

    pub fn try_generate(spec: &DataSpec) -> Result<Dataset, DataError> {
        for (name, count) in &spec.records {
            if ObjectKind::from_name(name).is_none() {
                return Err(DataError::UnknownObject(name.clone()));
            }
            if *count > MAX_RECORDS {
                return Err(DataError::TooManyRecords { object: name.clone(), count: *count, max: MAX_RECORDS });
            }
        }
        Ok(Self::build(spec.clone()))
    }

    fn build(spec: DataSpec) -> Dataset {
        let mut counts = [0_u32; 4];
        counts[ObjectKind::User.index()] = DataSpec::DEFAULT_USERS as u32;
        for (name, count) in &spec.records {
            if let Some(kind) = ObjectKind::from_name(name) {
                // Validated by the callers; the cast cannot truncate below MAX_RECORDS.
                counts[kind.index()] = (*count).min(MAX_RECORDS) as u32;
            }
        }
        // Every record needs an owner.
        let users = &mut counts[ObjectKind::User.index()];
        *users = (*users).max(1);
        let spread = i64::try_from(spec.spread.as_secs()).unwrap_or(i64::MAX / 4);
        let ctx = Arc::new(GenContext::new(spec.seed, spec.start.timestamp(), spread, counts));
        let objects = ObjectKind::ALL
            .iter()
            .map(|&kind| ObjectData {
                schema: kind.schema(),
                states: (0..counts[kind.index()]).map(|idx| objects::initial_state(&ctx, kind, idx)).collect(),
            })
            .collect();
        Dataset { spec, ctx, objects, changes: Vec::new(), change_seq: 0 }
    }

    pub fn spec(&self) -> &DataSpec {
        &self.spec
    }

    pub fn objects(&self) -> Vec<&ObjectSchema> {
        self.objects.iter().map(|o| &o.schema).collect()
    }

    /// Case-insensitive, as Salesforce resolves object names.
    pub fn schema(&self, object: &str) -> Option<&ObjectSchema> {
        ObjectKind::from_name(object).map(|kind| &self.objects[kind.index()].schema)
    }

    /// Live records (deleted ones are not counted); 0 for an object the simulator does not have.
    pub fn record_count(&self, object: &str) -> usize {
        ObjectKind::from_name(object).map_or(0, |kind| self.states(kind).iter().filter(|st| st.is_live()).count())
    }

    /// Every live record id of that object, in creation order.
    pub fn ids(&self, object: &str) -> Vec<String> {
        let Some(kind) = ObjectKind::from_name(object) else {
            return Vec::new();
        };
        self.states(kind).iter().filter(|st| st.is_live()).map(|st| self.ctx.record_id(kind, st.idx)).collect()
    }

    /// Modifies `modifications` existing records (any data object, in proportion to its size) and
    /// inserts `inserts` new ones (in proportion to the seeded counts), all stamped `now`.
    ///
    /// Deterministic: which records change, and how, follows from the seed and the number of
    /// changes applied before, so replaying the same calls rebuilds the same org.
    pub fn apply_changes(&mut self, modifications: usize, inserts: usize, now: DateTime<Utc>) {
        self.apply(ChangeBatch { modifications, inserts, now: now.timestamp(), ..ChangeBatch::default() });
    }

    /// Applies one batch of changes (see [`ChangeBatch`]); returns the ids of the records it
    /// deleted. Deterministic, as [`Dataset::apply_changes`] is.
    pub fn apply(&mut self, batch: ChangeBatch) -> Vec<String> {
        let deleted = changes::apply(self, &batch);
        self.changes.push(batch);
        deleted
    }

    /// The records of `object` deleted in `[start, end)` (seconds since the epoch), recycled or
    /// purged, with their deletion times: what the REST `deleted` resource reports.
    pub fn deleted_between(&self, object: &str, start: i64, end: i64) -> Vec<(String, i64)> {
        let Some(kind) = ObjectKind::from_name(object) else { return Vec::new() };
        let mut out: Vec<(String, i64)> = self
            .states(kind)
            .iter()
            .filter_map(|st| st.deleted_at().filter(|at| (start..end).contains(at)).map(|at| (st.idx, at)))
            .map(|(idx, at)| (self.ctx.record_id(kind, idx), at))
            .collect();
        out.sort_by_key(|(_, at)| *at);
        out
    }

    /// How many change batches were applied since generation.
    pub fn change_batches(&self) -> usize {
        self.changes.len()
    }

    pub(crate) fn ctx(&self) -> &Arc<GenContext> {
        &self.ctx
    }

    pub(crate) fn states(&self, kind: ObjectKind) -> &[RecordState] {
        &self.objects[kind.index()].states
    }
}

#[cfg(test)]
mod tests;
