//! Typed records over the byte-level store: every value is a format version (u16, big endian)
//! followed by its bincode encoding.
//!
//! The version prefix is what lets a future release change a record's shape and still refuse,
//! with a message naming the record, to misread one it does not understand. bincode is not
//! self-describing, so without it a changed struct would decode into silent garbage.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::display_key;
use super::{StateStore, StoreError, Tree};

/// A record kind stored in one tree.
pub trait Record: Serialize + DeserializeOwned {
    const TREE: Tree;
    /// Bump on any change to the serialized shape, including reordering enum variants.
    const VERSION: u16;

    /// Reads a record written by an older release (`version` < [`Self::VERSION`]), so an upgrade
    /// keeps the runs in flight; `None` when that version is not readable.
    fn upgrade(version: u16, body: &[u8]) -> Option<Result<Self, String>> {
        let _ = (version, body);
        None
    }
}

/// The upper bound on one record's size: garbage that claims a huge length must fail to decode,
/// not allocate gigabytes.
const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

const VERSION_LEN: usize = 2;

pub fn encode<R: Record>(key: &[u8], record: &R) -> Result<Vec<u8>, StoreError> {
    let mut bytes = R::VERSION.to_be_bytes().to_vec();
    let body = bincode::serde::encode_to_vec(record, config()).map_err(|source| StoreError::Encode {
        tree: R::TREE,
        key: display_key(key),
        source,
    })?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

pub fn decode<R: Record>(key: &[u8], bytes: &[u8]) -> Result<R, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { tree: R::TREE, key: display_key(key), reason };
    let (version, body) = bytes
        .split_first_chunk::<VERSION_LEN>()
        .ok_or_else(|| corrupt(format!("{} bytes is too short for a record", bytes.len())))?;
    let version = u16::from_be_bytes(*version);
    if version < R::VERSION
        && let Some(upgraded) = R::upgrade(version, body)
    {
        return upgraded.map_err(|e| corrupt(format!("reading a version {version} record: {e}")));
    }
    if version != R::VERSION {
        return Err(StoreError::UnsupportedVersion {
            tree: R::TREE,
            key: display_key(key),
            found: version,
            supported: R::VERSION,
        });
    }
    let (record, read) =
        bincode::serde::decode_from_slice::<R, _>(body, config()).map_err(|e| corrupt(e.to_string()))?;
    if read != body.len() {
        return Err(corrupt(format!("{} trailing bytes after the record", body.len() - read)));
    }
    Ok(record)
}

/// A decoded record with the exact bytes it was read from, to expect them in a later
/// [`Batch`](super::Batch) (compare-and-swap).
#[derive(Clone, Debug)]
pub struct Stored<R> {
    pub key: Vec<u8>,
    pub value: R,
    pub raw: Vec<u8>,
}

pub fn load<R: Record>(store: &dyn StateStore, key: &[u8]) -> Result<Option<Stored<R>>, StoreError> {
    store.get(R::TREE, key)?.map(|raw| Ok(Stored { key: key.to_vec(), value: decode(key, &raw)?, raw })).transpose()
}

pub fn get<R: Record>(store: &dyn StateStore, key: &[u8]) -> Result<Option<R>, StoreError> {
    Ok(load(store, key)?.map(|s| s.value))
}

/// Every record under `prefix`, in key order.
pub fn scan<R: Record>(store: &dyn StateStore, prefix: &[u8]) -> Result<Vec<Stored<R>>, StoreError> {
    store
        .scan_prefix(R::TREE, prefix)?
        .into_iter()
        .map(|(key, raw)| {
            let value = decode(&key, &raw)?;
            Ok(Stored { key, value, raw })
        })
        .collect()
}

/// Decodes the body of an older version of a record with its own shape `T`, for
/// [`Record::upgrade`].
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let (value, read) = bincode::serde::decode_from_slice::<T, _>(body, config()).map_err(|e| e.to_string())?;
    if read != body.len() {
        return Err(format!("{} trailing bytes after the record", body.len() - read));
    }
    Ok(value)
}

/// Stores a [`serde_json::Value`] as its JSON text.
///
/// bincode cannot decode a `Value` directly (it needs a self-describing format), so a record
/// that holds arbitrary JSON, such as a checkpoint's input event, goes through a string.
pub mod json_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &serde_json::Value, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<serde_json::Value, D::Error> {
        let text = String::deserialize(deserializer)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        count: u64,
        #[serde(with = "json_string")]
        event: serde_json::Value,
    }

    impl Record for Sample {
        const TREE: Tree = Tree::Runs;
        const VERSION: u16 = 3;
    }

    fn sample() -> Sample {
        Sample {
            name: "a".into(),
            count: 7,
            event: serde_json::json!({"data": {"n": 1.5, "s": [true, null]}, "meta": {}}),
        }
    }

    #[test]
    fn round_trips_with_version_prefix() {
        let bytes = encode(b"k", &sample()).unwrap();
        assert_eq!(&bytes[..2], &3u16.to_be_bytes());
        assert_eq!(decode::<Sample>(b"k", &bytes).unwrap(), sample());
    }

    #[test]
    fn newer_version_is_refused_naming_tree_and_key() {
        let mut bytes = encode(b"flow@t", &sample()).unwrap();
        bytes[..2].copy_from_slice(&4u16.to_be_bytes());
        let err = decode::<Sample>(b"flow@t", &bytes).unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedVersion { found: 4, supported: 3, .. }));
        let msg = err.to_string();
        assert!(msg.contains("runs") && msg.contains("flow@t") && msg.contains("newer"), "{msg}");
    }

    #[test]
    fn garbage_is_a_clear_error_not_a_panic() {
        let good = encode(b"k", &sample()).unwrap();
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            // A valid version followed by a string length far past the end of the input.
            [3u16.to_be_bytes().to_vec(), vec![0xfc, 0xff, 0xff, 0xff, 0x7f]].concat(),
        ];
        // Every truncation of a valid record must also fail cleanly.
        cases.extend((2..good.len()).map(|n| good[..n].to_vec()));
        for bytes in cases {
            let err = decode::<Sample>(b"\x00key", &bytes).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{bytes:?}: {err}");
            assert!(err.to_string().contains("\\x00key"), "{err}");
        }
    }
}
