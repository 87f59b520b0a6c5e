//! Casting one Bulk API batch (every column text, as the CSV had it) to a schema's types.
//!
//! Arrow's own cast kernels do the parsing where they are exact (integers, floats, decimals parsed
//! from their digits, dates, timestamps with or without millis and offsets); they turn a value
//! they cannot parse into null. Comparing validity before and after finds exactly those values,
//! so each one becomes a [`RowError`] naming the column, the record's `Id` and the text, at the
//! cost of a bitmap comparison on the happy path.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray, new_null_array};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{CastOptions, cast_with_options, filter, nullif};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::{FieldSpec, FieldType, TableSchema};

/// What to do with input columns the schema does not name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtraColumns {
    #[default]
    Drop,
    Error,
}

/// The column that identifies a Salesforce record; errors name the record by it.
pub const ID_COLUMN: &str = "Id";

/// Values quoted in errors are cut here, so one huge text field cannot flood a log line.
const MAX_QUOTED_VALUE: usize = 100;

/// Casts batches to one schema.
#[derive(Debug, Clone)]
pub struct Caster {
    schema: TableSchema,
    arrow: SchemaRef,
    extra_columns: ExtraColumns,
}

/// The result of casting one batch.
#[derive(Debug)]
pub struct Cast {
    /// The rows that cast cleanly, in the schema's column order and types.
    pub batch: RecordBatch,
    /// One entry per value that could not be cast, ordered by row. Empty when every row is good.
    pub errors: Vec<RowError>,
    /// Input columns the schema does not name, which were dropped.
    pub dropped: Vec<String>,
}

/// A value that cannot become its column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row's index in the input batch.
    pub row: usize,
    pub column: String,
    /// The record's `Id`, when the batch has one for this row.
    pub id: Option<String>,
    /// The text that failed to parse; `None` for an empty value in a non-nullable column.
    pub value: Option<String>,
    pub ty: FieldType,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column `{}`, ", self.column)?;
        match &self.id {
            Some(id) => write!(f, "record Id `{id}`")?,
            None => write!(f, "row {} (no Id)", self.row)?,
        }
        match &self.value {
            Some(v) => write!(f, ": cannot cast `{}` to {}", quoted(v), self.ty),
            None => write!(f, ": empty value, but the schema says the {} column is not nullable", self.ty),
        }
    }
}

fn quoted(v: &str) -> String {
    match v.char_indices().nth(MAX_QUOTED_VALUE) {
        Some((end, _)) => format!("{}…", &v[..end]),
        None => v.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CastError {
    #[error("column `{column}` is {found}, not text; convert casts the text columns of Bulk API results")]
    NotText { column: String, found: DataType },
    #[error(
        "columns not in the schema: {}; add them to the schema or set `extra_columns: drop`",
        columns.join(", ")
    )]
    ExtraColumns { columns: Vec<String> },
    #[error("column `{column}` is missing from the batch and the schema says it is not nullable")]
    MissingRequired { column: String },
    #[error("{first}{}", if *total > 1 { format!(" (and {} more bad values in this batch)", total - 1) } else { String::new() })]
    BadValues { first: Box<RowError>, total: usize },
    #[error("column `{column}`: {source}")]
    Arrow {
        column: String,
        #[source]
        source: ArrowError,
    },
}

impl Caster {
    pub fn new(schema: TableSchema, extra_columns: ExtraColumns) -> Self {
        let arrow = schema.arrow_schema();
        Self { schema, arrow, extra_columns }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.arrow
    }

    pub fn cast(&self, input: &RecordBatch) -> Result<Cast, CastError> {
        let input_schema = input.schema();
        let names: Vec<&str> = input_schema.fields().iter().map(|f| f.name().as_str()).collect();
        let sources: Vec<Option<usize>> = self.schema.fields.iter().map(|f| find_column(&names, &f.name)).collect();
        let dropped: Vec<String> =
            (0..names.len()).filter(|i| !sources.contains(&Some(*i))).map(|i| names[i].to_string()).collect();
        if !dropped.is_empty() && self.extra_columns == ExtraColumns::Error {
            return Err(CastError::ExtraColumns { columns: dropped });
        }
        let ids = find_column(&names, ID_COLUMN).map(|i| text(ID_COLUMN, input.column(i))).transpose()?;
        let id_at = |row: usize| {
            ids.as_ref()
                .and_then(|a| a.as_string::<i32>().is_valid(row).then(|| a.as_string::<i32>().value(row).to_string()))
        };

        let rows = input.num_rows();
        let mut columns = Vec::with_capacity(self.schema.fields.len());
        let mut errors = Vec::new();
        for (field, source) in self.schema.fields.iter().zip(&sources) {
            let Some(index) = source else {
                if !field.nullable && rows > 0 {
                    return Err(CastError::MissingRequired { column: field.name.clone() });
                }
                columns.push(new_null_array(&field.ty.arrow(), rows));
                continue;
            };
            let (array, bad) = cast_column(field, input.column(*index))?;
            errors.extend(bad.into_iter().map(|(row, value)| RowError {
                row,
                column: field.name.clone(),
                id: id_at(row),
                value,
                ty: field.ty,
            }));
            columns.push(array);
        }
        errors.sort_by_key(|e| e.row);

        if !errors.is_empty() {
            let mut keep = vec![true; rows];
            for e in &errors {
                keep[e.row] = false;
            }
            let keep = BooleanArray::from(keep);
            columns = columns
                .iter()
                .map(|c| filter(c, &keep))
                .collect::<Result<_, _>>()
                .map_err(|source| CastError::Arrow { column: "(filtering bad rows)".into(), source })?;
        }
        let good_rows = columns.first().map_or(rows, |c| c.len());
        let options = RecordBatchOptions::new().with_row_count(Some(good_rows));
        let batch = RecordBatch::try_new_with_options(self.arrow.clone(), columns, &options)
            .map_err(|source| CastError::Arrow { column: "(assembling the batch)".into(), source })?;
        Ok(Cast { batch, errors, dropped })
    }
}

/// The input column for a schema field: the exact name, else the one name equal to it ignoring
/// case (SOQL is case-insensitive, so a query may spell `Id` as `ID`).
fn find_column(names: &[&str], wanted: &str) -> Option<usize> {
    names.iter().position(|n| *n == wanted).or_else(|| {
        let mut matches = names.iter().enumerate().filter(|(_, n)| n.eq_ignore_ascii_case(wanted));
        match (matches.next(), matches.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    })
}

/// The column as `Utf8` with empty strings as nulls: in Bulk API CSV an empty field is a null.
fn text(column: &str, array: &ArrayRef) -> Result<ArrayRef, CastError> {
    let utf8 = match array.data_type() {
        DataType::Utf8 => array.clone(),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            cast_with_options(array, &DataType::Utf8, &CastOptions::default())
                .map_err(|source| CastError::Arrow { column: column.to_string(), source })?
        }
        other => return Err(CastError::NotText { column: column.to_string(), found: other.clone() }),
    };
    let strings = utf8.as_string::<i32>();
    let offsets = strings.value_offsets();
    let empty = BooleanBuffer::collect_bool(strings.len(), |i| offsets[i + 1] == offsets[i]);
    if empty.count_set_bits() == strings.null_count() {
        // Only the nulls have zero length: nothing to blank out.
        return Ok(utf8);
    }
    nullif(strings, &BooleanArray::new(empty, None))
        .map_err(|source| CastError::Arrow { column: column.to_string(), source })
}

/// Rows of one column that failed: `(row, Some(text))` or `(row, None)` for a missing value.
type BadRows = Vec<(usize, Option<String>)>;

/// One column cast to its field's type, with the rows that failed: `(row, Some(text))` for a value
/// that does not parse, `(row, None)` for a null in a non-nullable field.
fn cast_column(field: &FieldSpec, array: &ArrayRef) -> Result<(ArrayRef, BadRows), CastError> {
    let target = field.ty.arrow();
    let arrow_err = |source| CastError::Arrow { column: field.name.clone(), source };
    // A column that already has the type (a batch cast before) passes as it is.
    let (input, output) = if array.data_type() == &target && target != DataType::Utf8 {
        (array.clone(), array.clone())
    } else {
        let input = text(&field.name, array)?;
        let output: ArrayRef = match field.ty {
            FieldType::String => input.clone(),
            FieldType::Boolean => Arc::new(parse_bool(input.as_string::<i32>())),
            FieldType::Timestamp => crate::schema::utc_millis(&input, true).map_err(arrow_err)?,
            _ => cast_with_options(&input, &target, &CastOptions { safe: true, ..Default::default() })
                .map_err(arrow_err)?,
        };
        (input, output)
    };
    let mut bad = Vec::new();
    if output.null_count() > input.null_count() {
        let strings = input.as_string::<i32>();
        bad.extend(
            (0..input.len())
                .filter(|&i| input.is_valid(i) && output.is_null(i))
                .map(|i| (i, Some(strings.value(i).to_string()))),
        );
    }
    if !field.nullable && input.null_count() > 0 {
        bad.extend((0..input.len()).filter(|&i| input.is_null(i)).map(|i| (i, None)));
    }
    Ok((output, bad))
}

/// `true`/`false` in any case, as Salesforce writes checkboxes. Arrow's own boolean cast also takes
/// `yes`, `1`, `t`, ...; a schema that says boolean should reject those rather than guess.
fn parse_bool(strings: &StringArray) -> BooleanArray {
    strings
        .iter()
        .map(|v| {
            v.and_then(|s| {
                if s.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if s.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }
            })
        })
        .collect()
}
