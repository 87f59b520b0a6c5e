//! The process environment as tasks read it (templates' `{{env.X}}`, endpoint overrides, emulator
//! addresses). Passed in, not read from `std::env`, so tests give each flow its own without
//! mutating the process's.

use std::sync::Arc;

/// Reads an environment variable.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
