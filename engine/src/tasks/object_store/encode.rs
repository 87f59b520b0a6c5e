//! A batch as file bytes: Parquet (zstd, page statistics), CSV (with a header) or Arrow IPC.
//!
//! One batch is one Bulk API page (bounded by the query's `batch_size`), so encoding it in memory
//! is bounded too; the upload then decides between one PUT and a multipart upload by size.

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::config::FileFormat;

/// zstd's own default: a good ratio at several hundred MB/s, which the benchmark confirms.
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode Parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("cannot encode {format}: {source}")]
    Arrow {
        format: &'static str,
        #[source]
        source: ArrowError,
    },
}

pub fn encode(batch: &RecordBatch, format: FileFormat) -> Result<Vec<u8>, EncodeError> {
    match format {
        FileFormat::Parquet => parquet(batch),
        FileFormat::Csv => {
            let mut out = Vec::new();
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            w.write(batch).map_err(|source| EncodeError::Arrow { format: "CSV", source })?;
            drop(w);
            Ok(out)
        }
        FileFormat::Arrow => {
            let err = |source| EncodeError::Arrow { format: "Arrow IPC", source };
            let mut out = Vec::new();
            let mut w = arrow::ipc::writer::FileWriter::try_new(&mut out, &batch.schema()).map_err(err)?;
            w.write(batch).map_err(err)?;
            w.finish().map_err(err)?;
            drop(w);
            Ok(out)
        }
    }
}

fn parquet(batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        // Page-level min/max let readers skip pages on `Id` and date filters.
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    fn batch() -> RecordBatch {
        let id: ArrayRef = Arc::new(StringArray::from(vec!["001A", "001B"]));
        let n: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
        let d: ArrayRef = Arc::new(Decimal128Array::from(vec![12345, -1]).with_precision_and_scale(18, 2).unwrap());
        RecordBatch::try_from_iter(vec![("Id", id), ("N", n), ("D", d)]).unwrap()
    }

    #[test]
    fn parquet_is_zstd_with_statistics_and_reads_back_with_its_types() {
        let bytes = bytes::Bytes::from(encode(&batch(), FileFormat::Parquet).unwrap());
        let meta = SerializedFileReader::new(bytes.clone()).unwrap().metadata().clone();
        let col = meta.row_group(0).column(0);
        assert!(matches!(col.compression(), Compression::ZSTD(_)));
        assert!(col.statistics().is_some());
        let mut reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
        let back = reader.next().unwrap().unwrap();
        assert_eq!(back, batch());
    }

    #[test]
    fn csv_has_a_header_and_arrow_ipc_round_trips() {
        let csv = String::from_utf8(encode(&batch(), FileFormat::Csv).unwrap()).unwrap();
        assert_eq!(csv, "Id,N,D\n001A,1,123.45\n001B,,-0.01\n");
        let ipc = encode(&batch(), FileFormat::Arrow).unwrap();
        let mut r = arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(ipc), None).unwrap();
        assert_eq!(r.next().unwrap().unwrap(), batch());
    }
}
