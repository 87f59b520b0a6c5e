//! Results CSV as Bulk API 2.0 writes it: every value quoted (embedded quotes doubled, delimiters
//! and newlines left inside the quotes), a null as an empty field, the job's delimiter and line
//! ending throughout.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ColumnDelimiter {
    #[default]
    Comma,
    Tab,
    Pipe,
    Semicolon,
    Caret,
    Backquote,
}

impl ColumnDelimiter {
    pub fn byte(self) -> u8 {
        match self {
            ColumnDelimiter::Comma => b',',
            ColumnDelimiter::Tab => b'\t',
            ColumnDelimiter::Pipe => b'|',
            ColumnDelimiter::Semicolon => b';',
            ColumnDelimiter::Caret => b'^',
            ColumnDelimiter::Backquote => b'`',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LineEnding {
    #[default]
    Lf,
    Crlf,
}

impl LineEnding {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Lf => b"\n",
            LineEnding::Crlf => b"\r\n",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CsvFormat {
    pub delimiter: ColumnDelimiter,
    pub line_ending: LineEnding,
}

impl CsvFormat {
    pub fn write_row<'a>(&self, out: &mut Vec<u8>, cells: impl IntoIterator<Item = Option<&'a str>>) {
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter.byte());
            }
            if let Some(text) = cell {
                write_quoted(out, text);
            }
        }
        out.extend_from_slice(self.line_ending.bytes());
    }
}

fn write_quoted(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for part in text.split_inclusive('"') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_doubles_and_keeps_nulls_empty() {
        let format = CsvFormat { delimiter: ColumnDelimiter::Pipe, line_ending: LineEnding::Crlf };
        let mut out = Vec::new();
        format.write_row(&mut out, [Some("a\"b|c\nd"), None, Some("")]);
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\"\"b|c\nd\"||\"\"\r\n");
    }

    #[test]
    fn every_delimiter_serialises_under_its_documented_name() {
        for (d, name) in [
            (ColumnDelimiter::Comma, "COMMA"),
            (ColumnDelimiter::Tab, "TAB"),
            (ColumnDelimiter::Pipe, "PIPE"),
            (ColumnDelimiter::Semicolon, "SEMICOLON"),
            (ColumnDelimiter::Caret, "CARET"),
            (ColumnDelimiter::Backquote, "BACKQUOTE"),
        ] {
            assert_eq!(serde_json::to_value(d).unwrap(), name);
        }
    }
}
