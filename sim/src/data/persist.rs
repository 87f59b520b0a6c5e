//! Persisting a dataset: the spec and the change batches are enough to rebuild it exactly, so the
//! saved form is a few bytes per batch however many records there are.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DataSpec, Dataset};

/// One [`Dataset::apply`] call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    pub modifications: usize,
    pub inserts: usize,
    /// Live records moved to the Recycle Bin.
    #[serde(default)]
    pub deletes: usize,
    /// The object `deletes` come from; without it they spread over the objects by size.
    #[serde(default)]
    pub delete_object: Option<String>,
    /// The object whose Recycle Bin is emptied, after the deletes.
    #[serde(default)]
    pub purge: Option<String>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// All that rebuilds a [`Dataset`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetState {
    pub spec: DataSpec,
    pub changes: Vec<ChangeBatch>,
}

impl Dataset {
    pub fn state(&self) -> DatasetState {
        DatasetState { spec: self.spec.clone(), changes: self.changes.clone() }
    }

    /// Regenerates from the spec and replays the changes: the same org, byte for byte.
    pub fn from_state(state: &DatasetState) -> Dataset {
        let mut data = Dataset::generate(&state.spec);
        for batch in &state.changes {
            super::changes::apply(&mut data, batch);
            data.changes.push(batch.clone());
        }
        data
    }
}

#[derive(Serialize)]
struct StateRef<'a> {
    spec: &'a DataSpec,
    changes: &'a [ChangeBatch],
}

impl Serialize for Dataset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StateRef { spec: &self.spec, changes: &self.changes }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Dataset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DatasetState::deserialize(deserializer).map(|state| Dataset::from_state(&state))
    }
}
