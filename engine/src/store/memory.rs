//! An in-memory store: the reference behaviour of [`StateStore`], and a fast store for tests of
//! code above the ledger. It is not durable, by design.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::batch::Write;
use super::{Batch, Commit, Entry, StateStore, StoreError, Tree};

type Trees = BTreeMap<Tree, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Debug, Default)]
pub struct MemoryStore {
    trees: Mutex<Trees>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn trees(&self) -> MutexGuard<'_, Trees> {
        // A panic while holding the lock cannot leave a half-applied batch: batches are checked
        // in full before the first write, and writes to a BTreeMap do not panic midway.
        self.trees.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for MemoryStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.trees().get(&tree).and_then(|t| t.get(key)).cloned())
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let trees = self.trees();
        let Some(entries) = trees.get(&tree) else {
            return Ok(Vec::new());
        };
        Ok(entries
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<Commit, StoreError> {
        let mut trees = self.trees();
        for expect in &batch.expects {
            let current = trees.get(&expect.tree).and_then(|t| t.get(&expect.key));
            if current != expect.value.as_ref() {
                return Ok(Commit::Conflict { tree: expect.tree, key: expect.key.clone() });
            }
        }
        for write in batch.writes {
            match write {
                Write::Put { tree, key, value } => {
                    trees.entry(tree).or_default().insert(key, value);
                }
                Write::Delete { tree, key } => {
                    if let Some(t) = trees.get_mut(&tree) {
                        t.remove(&key);
                    }
                }
            }
        }
        Ok(Commit::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;
    use crate::store::StateStore;

    fn fixture() -> Box<dyn StateStore> {
        Box::new(MemoryStore::new())
    }

    crate::store::conformance::conformance_tests!(fixture);
}
