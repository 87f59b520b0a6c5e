//! A batch of writes guarded by expectations: the one write primitive of [`StateStore`].
//!
//! Expectations make read-modify-write safe without a lock in the store: read, compute, commit
//! expecting the bytes read. It also gives "create if absent" (expect `None`) for free, which is
//! how one tick can never open two runs.
//!
//! [`StateStore`]: super::StateStore

use super::Tree;

/// What a key must hold for a batch to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expect {
    pub tree: Tree,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    Put { tree: Tree, key: Vec<u8>, value: Vec<u8> },
    Delete { tree: Tree, key: Vec<u8> },
}

/// Expectations checked against the state before the batch, then writes applied in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub(crate) expects: Vec<Expect>,
    pub(crate) writes: Vec<Write>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to hold exactly `value` (`None`: to be absent) when the batch commits.
    pub fn expect(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) -> &mut Self {
        self.expects.push(Expect { tree, key: key.into(), value });
        self
    }

    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: Vec<u8>) -> &mut Self {
        self.writes.push(Write::Put { tree, key: key.into(), value });
        self
    }

    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) -> &mut Self {
        self.writes.push(Write::Delete { tree, key: key.into() });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.expects.is_empty() && self.writes.is_empty()
    }
}

/// The outcome of [`StateStore::commit`](super::StateStore::commit).
#[must_use = "a conflicting batch wrote nothing; re-read and retry, or report it"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    Applied,
    /// The first expectation that did not hold; nothing was written.
    Conflict {
        tree: Tree,
        key: Vec<u8>,
    },
}
