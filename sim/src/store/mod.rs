//! Where the org's state lives between requests, and (with `--state`) between runs.

pub mod persist;
pub mod results;
