//! The file formats bulkflow writes (the `object_store` task, `bulkflow export`), as flow files
//! and flags spell them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// zstd, page statistics.
    #[default]
    Parquet,
    /// With a header row.
    Csv,
    /// Arrow IPC file.
    Arrow,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Arrow => "arrow",
        }
    }
}
