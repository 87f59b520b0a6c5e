//! Putting one file's bytes at a path, atomically: a single PUT when small, a multipart upload when
//! large. Either way no reader ever sees half a file — an object appears only when its PUT or its
//! multipart completion succeeds, and the local store writes to a temporary name and renames.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

/// Files above this go up in parts of this size: big enough for S3's 5 MiB minimum part, small
/// enough that a retry after a dropped connection resends little.
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;

/// Uploads `bytes` to `path`, replacing what is there.
pub async fn put(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    bytes: Vec<u8>,
    threshold: usize,
) -> object_store::Result<()> {
    if bytes.len() <= threshold {
        store.put(path, PutPayload::from(bytes)).await?;
        return Ok(());
    }
    let upload = store.put_multipart(path).await?;
    let mut parts = WriteMultipart::new_with_chunk_size(upload, threshold);
    parts.put(bytes.into());
    // On failure `finish` aborts the upload (deleting its parts); the object stays as it was.
    parts.finish().await?;
    Ok(())
}
