//! A Bulk API 2.0 query job's options as flows spell them (`query_operation`, `content_type`,
//! `column_delimiter`, `line_ending`): the client sends them, the query-job task reads them.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum QueryOperation {
    #[serde(rename = "query")]
    Query,
    #[serde(rename = "queryAll", alias = "query_all")]
    QueryAll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ContentType {
    #[serde(rename = "csv", alias = "CSV")]
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnDelimiter {
    #[serde(alias = "COMMA")]
    Comma,
    #[serde(alias = "TAB")]
    Tab,
    #[serde(alias = "PIPE")]
    Pipe,
    #[serde(alias = "SEMICOLON")]
    Semicolon,
    #[serde(alias = "CARET")]
    Caret,
    #[serde(alias = "BACKQUOTE")]
    Backquote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEnding {
    #[serde(alias = "LF")]
    Lf,
    #[serde(alias = "CRLF")]
    Crlf,
}
