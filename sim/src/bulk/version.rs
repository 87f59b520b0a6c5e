//! The `vXX.X` path segment.

use crate::api_error::ApiError;

/// Bulk API 2.0 query jobs exist from this version on; below it the path does not exist.
const FIRST_QUERY_VERSION: u32 = 47;
/// Newest version the simulator answers to (Spring '26).
const LATEST_VERSION: u32 = 66;

/// The version of jobs made outside the API (`POST /__sim/jobs`).
pub const DEFAULT: &str = "63.0";

/// `v63.0` → `63.0`, or 404 as the real API gives for a version it does not serve.
pub fn parse(segment: &str) -> Result<String, ApiError> {
    let number = segment.strip_prefix('v').ok_or_else(ApiError::not_found)?;
    let (major, minor) = number.split_once('.').ok_or_else(ApiError::not_found)?;
    let major: u32 = major.parse().map_err(|_| ApiError::not_found())?;
    if minor != "0" || !(FIRST_QUERY_VERSION..=LATEST_VERSION).contains(&major) {
        return Err(ApiError::not_found());
    }
    Ok(format!("{major}.0"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_served_versions_only() {
        assert_eq!(super::parse("v63.0").unwrap(), "63.0");
        assert_eq!(super::parse("v47.0").unwrap(), "47.0");
        for bad in ["63.0", "v46.0", "v63", "v63.1", "vX.0", "v99.0"] {
            assert_eq!(super::parse(bad).unwrap_err().code, "NOT_FOUND", "{bad}");
        }
    }
}
