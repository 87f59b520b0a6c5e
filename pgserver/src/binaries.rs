//! Where PostgreSQL's server binaries are: Debian installs them per major version under
//! `/usr/lib/postgresql/<major>/bin`, off PATH.

use std::path::PathBuf;

use crate::PgError;

/// `$BULKFLOW_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` holding `initdb`, else the
/// folder on PATH that holds it.
pub fn find_bin_dir() -> Result<PathBuf, PgError> {
    if let Some(dir) = std::env::var_os("BULKFLOW_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .ok_or_else(|| PgError::NotInstalled { looked: "$BULKFLOW_PG_BIN, /usr/lib/postgresql/*/bin and PATH".into() })
}
