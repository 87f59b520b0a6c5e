//! A sled store in a temporary directory, for tests anywhere in the crate.

use tempfile::TempDir;

use super::{Batch, Commit, Entry, SledStore, StateStore, StoreError, Tree};

/// Deletes its directory when dropped, after the store inside has closed.
#[derive(Debug)]
pub(crate) struct TempSled {
    store: SledStore,
    _dir: TempDir,
}

impl TempSled {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        Self { store: SledStore::open(dir.path()).expect("open sled in a fresh temporary directory"), _dir: dir }
    }
}

impl StateStore for TempSled {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(tree, key)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        self.store.scan_prefix(tree, prefix)
    }

    fn commit(&self, batch: Batch) -> Result<Commit, StoreError> {
        self.store.commit(batch)
    }
}

impl AsRef<dyn StateStore> for TempSled {
    fn as_ref(&self) -> &(dyn StateStore + 'static) {
        self
    }
}
