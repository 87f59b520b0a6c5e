//! `bulkflow export`: one Bulk API 2.0 query job, its results written as files to a folder or a
//! bucket, resumable after any interruption from the checkpoint kept beside the files.
//!
//! Unlike the flows, an export has no state store, no schedule and no bus: everything it needs to
//! resume lives in `--out`, so the same command line run again finishes the job.

pub mod checkpoint;
pub mod encoder;
pub mod error;
pub mod out;
pub mod query;
pub mod run;

pub use error::ExportError;
pub use query::QuerySpec;
pub use run::{ExportRequest, Progress, Summary, export};
