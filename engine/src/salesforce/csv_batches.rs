//! Bulk API CSV, parsed incrementally from the bytes of a response body into Arrow batches of
//! Utf8 columns (types come later, from `convert`). RFC 4180 (quoted delimiters and newlines),
//! NUL bytes stripped, an empty field — quoted or not — is null. Every page starts with its own
//! header row, which must match the first page's.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

pub struct PageParser {
    reader: Reader,
    /// Bytes of the record being read, and where each field ends.
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    header_seen: bool,
    schema: Option<SchemaRef>,
    builders: Vec<StringBuilder>,
    rows_in_batch: usize,
    batch_size: usize,
    rows: u64,
    ready: Vec<RecordBatch>,
    /// Whether an odd number of quote bytes has been read: the page is inside a quoted field.
    /// csv-core ends an open quote at the end of input without a word, which would make the rest
    /// of a page one field; this is how that is told apart.
    in_quotes: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("row {row}: {reason}")]
    Row { row: u64, reason: String },
    #[error("header {found:?} differs from the first page's {expected:?}")]
    Header { expected: Vec<String>, found: Vec<String> },
    #[error("the page has no header row")]
    NoHeader,
    #[error("{at}: a quoted field is never closed (the page ends inside it)")]
    Unterminated { at: String },
}

impl PageParser {
    /// `schema`: the header of an earlier page, which this page's must repeat.
    pub fn new(delimiter: u8, batch_size: usize, schema: Option<SchemaRef>) -> Self {
        Self {
            reader: ReaderBuilder::new().delimiter(delimiter).build(),
            out: vec![0; 4096],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
            header_seen: false,
            schema,
            builders: Vec::new(),
            rows_in_batch: 0,
            batch_size: batch_size.max(1),
            rows: 0,
            ready: Vec::new(),
            in_quotes: false,
        }
    }

    /// Data rows parsed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }

    /// Batches completed so far; take them as they come to keep memory flat.
    pub fn take_ready(&mut self) -> Vec<RecordBatch> {
        std::mem::take(&mut self.ready)
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), CsvError> {
        let quotes = chunk.iter().filter(|&&b| b == b'"').count();
        self.in_quotes ^= quotes % 2 == 1;
        if chunk.contains(&0) {
            let clean: Vec<u8> = chunk.iter().copied().filter(|&b| b != 0).collect();
            return self.parse(&clean);
        }
        self.parse(chunk)
    }

    /// End of the page: the last record (with or without a final newline) and the last batch.
    pub fn finish(&mut self) -> Result<(), CsvError> {
        if self.in_quotes {
            // An open quote swallows every record boundary after it, so the record it opened in
            // is the one being read.
            let at = if self.header_seen { format!("row {}", self.rows + 1) } else { "the header row".into() };
            return Err(CsvError::Unterminated { at });
        }
        self.parse(&[])?;
        if !self.header_seen {
            return Err(CsvError::NoHeader);
        }
        self.flush();
        Ok(())
    }

    fn parse(&mut self, mut input: &[u8]) -> Result<(), CsvError> {
        loop {
            let (result, nin, nout, nend) =
                self.reader.read_record(input, &mut self.out[self.out_len..], &mut self.ends[self.ends_len..]);
            input = &input[nin..];
            // csv-core writes `ends` as offsets into the whole record, across calls.
            self.out_len += nout;
            self.ends_len += nend;
            match result {
                ReadRecordResult::InputEmpty => return Ok(()),
                ReadRecordResult::OutputFull => self.out.resize(self.out.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    self.record()?;
                    self.out_len = 0;
                    self.ends_len = 0;
                }
                ReadRecordResult::End => return Ok(()),
            }
        }
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    fn record(&mut self) -> Result<(), CsvError> {
        let n = self.ends_len;
        if !self.header_seen {
            self.header_seen = true;
            let names: Vec<String> = (0..n).map(|i| String::from_utf8_lossy(self.field(i)).into_owned()).collect();
            match &self.schema {
                Some(s) => {
                    let expected: Vec<String> = s.fields().iter().map(|f| f.name().clone()).collect();
                    if expected != names {
                        return Err(CsvError::Header { expected, found: names });
                    }
                }
                None => {
                    let fields: Vec<Field> = names.iter().map(|n| Field::new(n, DataType::Utf8, true)).collect();
                    self.schema = Some(Arc::new(Schema::new(fields)));
                }
            }
            self.builders = (0..n).map(|_| StringBuilder::new()).collect();
            return Ok(());
        }
        let row = self.rows + 1;
        if n != self.builders.len() {
            // A blank line at the very end is not a record.
            if n == 1 && self.field(0).is_empty() {
                return Ok(());
            }
            return Err(CsvError::Row { row, reason: format!("{n} fields, the header has {}", self.builders.len()) });
        }
        for i in 0..n {
            let (start, end) = (if i == 0 { 0 } else { self.ends[i - 1] }, self.ends[i]);
            let bytes = &self.out[start..end];
            if bytes.is_empty() {
                self.builders[i].append_null();
            } else {
                let text = std::str::from_utf8(bytes)
                    .map_err(|e| CsvError::Row { row, reason: format!("column {} is not UTF-8: {e}", i + 1) })?;
                self.builders[i].append_value(text);
            }
        }
        self.rows += 1;
        self.rows_in_batch += 1;
        if self.rows_in_batch >= self.batch_size {
            self.flush();
        }
        Ok(())
    }

    fn flush(&mut self) {
        if self.rows_in_batch == 0 {
            return;
        }
        let Some(schema) = self.schema.clone() else { return };
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        // Columns and schema come from the same header, so lengths and types always agree.
        if let Ok(batch) = RecordBatch::try_new(schema, columns) {
            self.ready.push(batch);
        }
        self.rows_in_batch = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, StringArray};

    fn parse_in_chunks(text: &[u8], chunk: usize, batch: usize) -> Result<Vec<RecordBatch>, CsvError> {
        let mut p = PageParser::new(b',', batch, None);
        let mut out = Vec::new();
        for c in text.chunks(chunk) {
            p.feed(c)?;
            out.extend(p.take_ready());
        }
        p.finish()?;
        out.extend(p.take_ready());
        Ok(out)
    }

    fn col(b: &RecordBatch, i: usize) -> Vec<Option<String>> {
        let a = b.column(i).as_any().downcast_ref::<StringArray>().unwrap();
        (0..a.len()).map(|r| a.is_valid(r).then(|| a.value(r).to_string())).collect()
    }

    const PAGE: &[u8] = b"\"Id\",\"Name\",\"Note\"\n\"001A\",\"Acme, \"\"Inc\"\"\",\"line1\nline2\"\n\"001B\",\"\",\n\"001C\",\"Caf\xc3\xa9\",\"x\"\n";

    #[test]
    fn quoting_newlines_nulls_and_utf8_in_any_chunking() {
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let batches = parse_in_chunks(PAGE, chunk, 100).unwrap();
            assert_eq!(batches.len(), 1);
            let b = &batches[0];
            assert_eq!(
                b.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(),
                ["Id", "Name", "Note"]
            );
            assert_eq!(col(b, 0), [Some("001A".into()), Some("001B".into()), Some("001C".into())]);
            assert_eq!(col(b, 1), [Some("Acme, \"Inc\"".into()), None, Some("Café".into())]);
            assert_eq!(col(b, 2), [Some("line1\nline2".into()), None, Some("x".into())]);
        }
    }

    #[test]
    fn batches_have_the_requested_size() {
        let mut text = b"Id\n".to_vec();
        for i in 0..25 {
            text.extend(format!("{i}\n").bytes());
        }
        let batches = parse_in_chunks(&text, 5, 10).unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), [10, 10, 5]);
    }

    #[test]
    fn crlf_a_missing_final_newline_and_nul_bytes() {
        let batches = parse_in_chunks(b"Id,Name\r\n001A,A\x00b\r\n001B,c", 3, 10).unwrap();
        assert_eq!(col(&batches[0], 1), [Some("Ab".into()), Some("c".into())]);
    }

    #[test]
    fn other_delimiters() {
        let mut p = PageParser::new(b'|', 10, None);
        p.feed(b"Id|Name\n1|a,b\n").unwrap();
        p.finish().unwrap();
        assert_eq!(col(&p.take_ready()[0], 1), [Some("a,b".into())]);
    }

    #[test]
    fn a_later_page_must_repeat_the_header() {
        let first = parse_in_chunks(b"Id,Name\n1,a\n", 64, 10).unwrap();
        let mut p = PageParser::new(b',', 10, Some(first[0].schema()));
        assert!(matches!(p.feed(b"Name,Id\n"), Err(CsvError::Header { .. })));
        let mut p = PageParser::new(b',', 10, Some(first[0].schema()));
        assert!(matches!(p.finish(), Err(CsvError::NoHeader)));
    }

    #[test]
    fn an_unterminated_quote_is_an_error_naming_its_row() {
        let err = parse_in_chunks(b"Id,Name\n1,a\n2,\"b\n3,c\n4,d\n", 3, 10).unwrap_err();
        assert_eq!(err, CsvError::Unterminated { at: "row 2".into() });
        assert_eq!(err.to_string(), "row 2: a quoted field is never closed (the page ends inside it)");
        let err = parse_in_chunks(b"Id,\"Name\n1,a\n", 64, 10).unwrap_err();
        assert_eq!(err, CsvError::Unterminated { at: "the header row".into() });
    }

    #[test]
    fn ragged_rows_are_errors_naming_the_row() {
        let err = parse_in_chunks(b"Id,Name\n1,a\n2\n", 64, 10).unwrap_err();
        assert_eq!(err, CsvError::Row { row: 2, reason: "1 fields, the header has 2".into() });
    }
}

#[cfg(test)]
mod long_fields {
    use super::*;
    use arrow::array::StringArray;

    /// Fields longer than the parser's first buffer, split across feeds, come out whole.
    #[test]
    fn a_field_longer_than_the_buffer() {
        let long = "é".repeat(6000);
        let text = format!("Id,Text,After\n1,\"{long}\",x\n2,short,y\n");
        let mut p = PageParser::new(b',', 10, None);
        for c in text.as_bytes().chunks(100) {
            p.feed(c).unwrap();
        }
        p.finish().unwrap();
        let b = &p.take_ready()[0];
        let text_col = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let after = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(text_col.value(0), long);
        assert_eq!((after.value(0), after.value(1), text_col.value(1)), ("x", "y", "short"));
    }
}
