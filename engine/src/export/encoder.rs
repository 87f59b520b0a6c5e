//! One output file, encoded as batches arrive: Parquet (zstd, page statistics, a row group every
//! [`ROW_GROUP_ROWS`] rows so memory holds one row group, not the file), CSV with a header, or
//! Arrow IPC.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::error::ExportError;
use super::out::Sink;
use crate::file_format::FileFormat;

/// Rows per Parquet row group: readers parallelise and skip by row group, and the writer buffers
/// one in memory.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

pub enum Encoder {
    Parquet(ArrowWriter<Sink>),
    Csv(arrow::csv::Writer<Sink>),
    Arrow(arrow::ipc::writer::FileWriter<Sink>),
}

impl Encoder {
    pub fn new(format: FileFormat, schema: &SchemaRef, sink: Sink, what: &str) -> Result<Self, ExportError> {
        let err = |e: &dyn std::fmt::Display| ExportError::output(what, format!("cannot start the file: {e}"));
        Ok(match format {
            FileFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(|e| err(&e))?))
                    .set_statistics_enabled(EnabledStatistics::Page)
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                Self::Parquet(ArrowWriter::try_new(sink, schema.clone(), Some(props)).map_err(|e| err(&e))?)
            }
            FileFormat::Csv => Self::Csv(arrow::csv::WriterBuilder::new().with_header(true).build(sink)),
            FileFormat::Arrow => {
                Self::Arrow(arrow::ipc::writer::FileWriter::try_new(sink, schema).map_err(|e| err(&e))?)
            }
        })
    }

    pub fn write(&mut self, batch: &RecordBatch, what: &str) -> Result<(), ExportError> {
        let err = |e: &dyn std::fmt::Display| ExportError::output(what, e);
        match self {
            Self::Parquet(w) => w.write(batch).map_err(|e| err(&e)),
            Self::Csv(w) => w.write(batch).map_err(|e| err(&e)),
            Self::Arrow(w) => w.write(batch).map_err(|e| err(&e)),
        }
    }

    /// Writes the file's end (footer, index) and hands back its sink to be finished.
    pub fn close(self, what: &str) -> Result<Sink, ExportError> {
        let err = |e: &dyn std::fmt::Display| ExportError::output(what, e);
        match self {
            Self::Parquet(w) => w.into_inner().map_err(|e| err(&e)),
            Self::Csv(w) => Ok(w.into_inner()),
            Self::Arrow(mut w) => {
                w.finish().map_err(|e| err(&e))?;
                w.into_inner().map_err(|e| err(&e))
            }
        }
    }
}
