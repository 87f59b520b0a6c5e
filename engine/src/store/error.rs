//! Store errors carry the tree and key they concern, so an operator reading a log line can find
//! the record that failed without a debugger.

use std::path::PathBuf;

use super::Tree;

/// Why a state store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path} is in use by another bulkflow process")]
    InUse { path: PathBuf },

    #[error("could not prepare state directory {path}: {source}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not open state directory {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },

    #[error(
        "state directory {path} was written in store format {found:?}, but this bulkflow reads \
         format {expected:?}; use a bulkflow release that matches it, or point bulkflow at a new \
         state directory"
    )]
    IncompatibleFormat { path: PathBuf, found: String, expected: &'static str },

    #[error(
        "state directory {path} holds data but no bulkflow format marker; it was not written by \
         bulkflow, or by a release too old to read"
    )]
    NotAStateStore { path: PathBuf },

    #[error("state store {op} failed on tree {tree}: {source}")]
    Backend {
        op: &'static str,
        tree: Tree,
        #[source]
        source: sled::Error,
    },

    #[error("committing a batch to the state store failed: {source}")]
    Commit {
        #[source]
        source: sled::Error,
    },

    #[error("flushing the state store to disk failed: {source}")]
    Flush {
        #[source]
        source: sled::Error,
    },

    #[error("could not encode record {key} for tree {tree}: {source}")]
    Encode {
        tree: Tree,
        key: String,
        #[source]
        source: bincode::error::EncodeError,
    },

    #[error("record {key} in tree {tree} is corrupt: {reason}")]
    Corrupt { tree: Tree, key: String, reason: String },

    #[error(
        "record {key} in tree {tree} has format version {found}, but this bulkflow reads version \
         {supported}{hint}",
        hint = if *found > *supported { " (it was written by a newer bulkflow)" } else { "" }
    )]
    UnsupportedVersion { tree: Tree, key: String, found: u16, supported: u16 },
}

/// Renders a binary key readably: printable ASCII stays, other bytes become `\xNN`.
pub(crate) fn display_key(key: &[u8]) -> String {
    key.iter().flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect()
}
