//! A BigQuery table as the fake keeps it: its columns (from the README's schema JSON), primary key
//! `Id`, and its rows as `tabledata.list` shows them. Appends are checked the way BigQuery checks
//! them, all of the batch before any of it lands.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use serde_json::{Value, json};

/// The pseudo-column of change data capture writes.
pub const CHANGE_TYPE: &str = "_CHANGE_TYPE";
/// Every table's primary key.
pub const PRIMARY_KEY: &str = "Id";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// BigQuery's type name: STRING, BOOL, INT64, FLOAT64, NUMERIC, BIGNUMERIC, DATE, TIMESTAMP.
    pub ty: &'static str,
    pub required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    fields: Vec<SchemaField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaField {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default = "yes")]
    nullable: bool,
}

fn yes() -> bool {
    true
}

/// The columns of a schema JSON (`{"fields": [{"name", "type", "nullable"}]}`) as BigQuery types.
pub fn parse_schema(text: &str) -> Result<Vec<Column>, String> {
    let file: SchemaFile = serde_json::from_str(text).map_err(|e| format!("not a schema JSON: {e}"))?;
    let mut columns = Vec::new();
    for f in file.fields {
        let t = f.ty.trim();
        let ty = match t {
            "string" => "STRING",
            "boolean" => "BOOL",
            "int64" => "INT64",
            "float64" => "FLOAT64",
            "date" => "DATE",
            "timestamp" => "TIMESTAMP",
            _ => {
                let (p, s) = t
                    .strip_prefix("decimal(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|r| r.split_once(','))
                    .and_then(|(p, s)| Some((p.trim().parse::<i32>().ok()?, s.trim().parse::<i32>().ok()?)))
                    .ok_or_else(|| format!("field `{}`: unknown type `{t}`", f.name))?;
                if s <= 9 && p - s <= 29 { "NUMERIC" } else { "BIGNUMERIC" }
            }
        };
        if columns.iter().any(|c: &Column| c.name == f.name) {
            return Err(format!("field `{}` is named twice", f.name));
        }
        columns.push(Column { name: f.name, ty, required: !f.nullable });
    }
    if !columns.iter().any(|c| c.name == PRIMARY_KEY) {
        return Err(format!("the schema has no `{PRIMARY_KEY}` field to be the primary key"));
    }
    Ok(columns)
}

/// Why an append was refused: the gRPC code and a message naming the table and the column.
#[derive(Debug)]
pub struct Refusal {
    pub code: tonic::Code,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// No `_CHANGE_TYPE` column: rows are appended as they are.
    Insert,
    Upsert,
    Delete,
}

pub struct Table {
    /// `project.dataset.table`.
    pub id: String,
    pub columns: Vec<Column>,
    /// Each row's cells in column order, as `tabledata.list` returns them.
    pub rows: Vec<Vec<Value>>,
    /// The row of each primary key (the last one, for a key inserted twice). Kept beside `rows`:
    /// rebuilt on every append, it made each append cost the whole table (a 1,000,000-row demo
    /// spent most of its time there).
    index: HashMap<String, usize>,
}

impl Table {
    pub fn new(id: &str, columns: Vec<Column>) -> Self {
        Self { id: id.to_string(), columns, rows: Vec::new(), index: HashMap::new() }
    }

    fn refuse(&self, column: &str, problem: impl std::fmt::Display) -> Refusal {
        Refusal {
            code: tonic::Code::InvalidArgument,
            message: format!("table `{}`, column `{column}`: {problem}", self.id),
        }
    }

    /// Checks the whole batch, then applies it row by row in order (so a batch naming one `Id`
    /// twice ends with its last row). Returns the number of rows applied.
    pub fn append(&mut self, batch: &RecordBatch) -> Result<usize, Refusal> {
        let schema = batch.schema();
        let mut mapping = Vec::new(); // (batch column, table column)
        let mut change_column = None;
        for (i, field) in schema.fields().iter().enumerate() {
            if field.name() == CHANGE_TYPE {
                if !matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
                    return Err(
                        self.refuse(CHANGE_TYPE, format!("must be a string, the input has {}", field.data_type()))
                    );
                }
                change_column = Some(i);
                continue;
            }
            let Some(t) = self.columns.iter().position(|c| &c.name == field.name()) else {
                return Err(self.refuse(field.name(), "the input schema has this field and the table does not"));
            };
            if !accepts(self.columns[t].ty, field.data_type()) {
                return Err(self.refuse(
                    field.name(),
                    format!("the table has it as {}, the input as Arrow {}", self.columns[t].ty, field.data_type()),
                ));
            }
            mapping.push((i, t));
        }
        let key = mapping.iter().find(|(_, t)| self.columns[*t].name == PRIMARY_KEY).map(|(i, _)| *i);
        let changes: Vec<Change> = match change_column {
            None => vec![Change::Insert; batch.num_rows()],
            Some(c) => {
                let array =
                    arrow::compute::cast(batch.column(c), &DataType::Utf8).map_err(|e| self.refuse(CHANGE_TYPE, e))?;
                let values = array.as_string::<i32>();
                let mut out = Vec::with_capacity(values.len());
                for row in 0..values.len() {
                    out.push(match values.is_valid(row).then(|| values.value(row)) {
                        Some("UPSERT") => Change::Upsert,
                        Some("DELETE") => Change::Delete,
                        other => {
                            return Err(self.refuse(
                                CHANGE_TYPE,
                                format!("row {row}: `{}` is neither UPSERT nor DELETE", other.unwrap_or("NULL")),
                            ));
                        }
                    });
                }
                out
            }
        };
        if change_column.is_some() && key.is_none() {
            return Err(self.refuse(PRIMARY_KEY, "the primary key is missing from an input with `_CHANGE_TYPE`"));
        }
        // Cells of every row, in table column order; unsent columns are NULL.
        let mut formatted = Vec::with_capacity(mapping.len());
        for &(i, t) in &mapping {
            formatted.push((
                t,
                cells(batch.column(i).as_ref(), self.columns[t].ty)
                    .map_err(|e| self.refuse(&self.columns[t].name, e))?,
            ));
        }
        let mut new_rows = Vec::with_capacity(batch.num_rows());
        for (row, change) in changes.iter().enumerate() {
            let mut row_cells = vec![Value::Null; self.columns.len()];
            for (t, column) in &formatted {
                row_cells[*t] = column[row].clone();
            }
            if let Some(k) = key
                && batch.column(k).is_null(row)
            {
                return Err(self.refuse(PRIMARY_KEY, format!("row {row}: the primary key is NULL")));
            }
            if *change != Change::Delete
                && let Some(c) = self.columns.iter().enumerate().find(|(t, c)| c.required && row_cells[*t].is_null())
            {
                return Err(self.refuse(&c.1.name, format!("row {row}: the column is REQUIRED and the value is NULL")));
            }
            new_rows.push(row_cells);
        }
        let key_index = self.columns.iter().position(|c| c.name == PRIMARY_KEY).expect("tables have a primary key");
        let key_of = |cells: &[Value]| cells[key_index].to_string();
        for (cells, change) in new_rows.into_iter().zip(changes) {
            match change {
                Change::Insert => {
                    self.index.insert(key_of(&cells), self.rows.len());
                    self.rows.push(cells);
                }
                Change::Upsert => match self.index.get(&key_of(&cells)) {
                    Some(&i) => self.rows[i] = cells,
                    None => {
                        self.index.insert(key_of(&cells), self.rows.len());
                        self.rows.push(cells);
                    }
                },
                Change::Delete => {
                    if let Some(i) = self.index.remove(&key_of(&cells)) {
                        self.rows.remove(i);
                        // Rows after it moved up one (rare: deletes are few).
                        self.index = self.rows.iter().enumerate().map(|(i, r)| (key_of(r), i)).collect();
                    }
                }
            }
        }
        Ok(batch.num_rows())
    }

    /// `tables.get`'s answer.
    pub fn resource(&self) -> Value {
        let (project, rest) = self.id.split_once('.').unwrap_or(("", &self.id));
        let (dataset, table) = rest.split_once('.').unwrap_or(("", rest));
        json!({
            "kind": "bigquery#table",
            "id": format!("{project}:{dataset}.{table}"),
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": self.columns.iter().map(|c| json!({
                "name": c.name,
                "type": c.ty,
                "mode": if c.required { "REQUIRED" } else { "NULLABLE" },
            })).collect::<Vec<_>>()},
            "tableConstraints": {"primaryKey": {"columns": [PRIMARY_KEY]}},
            "numRows": self.rows.len().to_string(),
            "type": "TABLE",
        })
    }
}

/// Which Arrow types BigQuery's Arrow reader takes for a column type.
fn accepts(ty: &str, arrow: &DataType) -> bool {
    match ty {
        "STRING" => matches!(arrow, DataType::Utf8 | DataType::LargeUtf8),
        "BOOL" => matches!(arrow, DataType::Boolean),
        "INT64" => matches!(arrow, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64),
        "FLOAT64" => matches!(arrow, DataType::Float32 | DataType::Float64),
        "NUMERIC" => matches!(arrow, DataType::Decimal128(38, 9)),
        "BIGNUMERIC" => matches!(arrow, DataType::Decimal256(76, 38)),
        "DATE" => matches!(arrow, DataType::Date32),
        "TIMESTAMP" => matches!(arrow, DataType::Timestamp(TimeUnit::Microsecond, _)),
        _ => false,
    }
}

/// One column's cells as `tabledata.list` writes them: every value a string (TIMESTAMP as
/// seconds since the epoch in E notation, NUMERIC without trailing zeros), NULL as null.
fn cells(array: &dyn Array, ty: &str) -> Result<Vec<Value>, String> {
    if ty == "TIMESTAMP" {
        // Seconds from the microseconds themselves: the display formatter needs a time zone
        // database for "UTC" and BigQuery's own text is not a date anyway.
        let micros = array.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        return Ok((0..array.len())
            .map(|row| {
                if array.is_null(row) {
                    Value::Null
                } else {
                    Value::String(format!("{:E}", micros.value(row) as f64 / 1e6))
                }
            })
            .collect());
    }
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(array, &options).map_err(|e| e.to_string())?;
    Ok((0..array.len())
        .map(|row| {
            if array.is_null(row) {
                return Value::Null;
            }
            let text = match ty {
                "NUMERIC" | "BIGNUMERIC" => {
                    let t = formatter.value(row).to_string();
                    if t.contains('.') { t.trim_end_matches('0').trim_end_matches('.').to_string() } else { t }
                }
                _ => formatter.value(row).to_string(),
            };
            Value::String(text)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn table() -> Table {
        let columns = parse_schema(
            r#"{"fields": [{"name": "Id", "type": "string", "nullable": false}, {"name": "Name", "type": "string"},
               {"name": "Employees", "type": "int64"}, {"name": "Amount", "type": "decimal(18,2)"},
               {"name": "At", "type": "timestamp"}]}"#,
        )
        .unwrap();
        Table::new("p.d.t", columns)
    }

    fn batch(ids: &[&str], names: &[&str], change: &[&str]) -> RecordBatch {
        let fields = vec![
            Field::new("Id", DataType::Utf8, false),
            Field::new("Name", DataType::Utf8, true),
            Field::new(CHANGE_TYPE, DataType::Utf8, false),
        ];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(StringArray::from(names.to_vec())),
            Arc::new(StringArray::from(change.to_vec())),
        ];
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    fn names(t: &Table) -> Vec<(String, String)> {
        t.rows.iter().map(|r| (r[0].as_str().unwrap().into(), r[1].as_str().unwrap_or("").into())).collect()
    }

    #[test]
    fn upserts_and_deletes_apply_by_primary_key_in_order() {
        let mut t = table();
        t.append(&batch(&["a", "b", "a"], &["first", "B", "last"], &["UPSERT", "UPSERT", "UPSERT"])).unwrap();
        assert_eq!(names(&t), [("a".into(), "last".into()), ("b".into(), "B".into())]);
        t.append(&batch(&["a", "z"], &["", ""], &["DELETE", "DELETE"])).unwrap();
        assert_eq!(names(&t), [("b".into(), "B".into())]);
        // Later appends find rows by key after a delete moved them.
        t.append(&batch(&["c", "b"], &["C", "B2"], &["UPSERT", "UPSERT"])).unwrap();
        assert_eq!(names(&t), [("b".into(), "B2".into()), ("c".into(), "C".into())]);
    }

    #[test]
    fn a_bad_change_type_refuses_the_whole_batch() {
        let mut t = table();
        let err = t.append(&batch(&["a", "b"], &["A", "B"], &["UPSERT", "MERGE"])).unwrap_err();
        assert!(err.message.contains("`MERGE` is neither UPSERT nor DELETE"), "{}", err.message);
        assert!(t.rows.is_empty());
    }

    #[test]
    fn values_are_written_as_tabledata_list_does() {
        let mut t = table();
        let fields = vec![
            Field::new("Id", DataType::Utf8, false),
            Field::new("Employees", DataType::Int64, true),
            Field::new("Amount", DataType::Decimal128(38, 9), true),
            Field::new("At", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        ];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(Int64Array::from(vec![Some(12)])),
            Arc::new(Decimal128Array::from(vec![1_000_500_000_000]).with_precision_and_scale(38, 9).unwrap()),
            Arc::new(TimestampMicrosecondArray::from(vec![1_764_061_500_000_000]).with_timezone("UTC")),
        ];
        t.append(&RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()).unwrap();
        assert_eq!(t.rows[0], vec![json!("a"), Value::Null, json!("12"), json!("1000.5"), json!("1.7640615E9")]);
    }

    #[test]
    fn a_wrong_type_names_the_table_and_the_column() {
        let mut t = table();
        let fields = vec![Field::new("Id", DataType::Utf8, false), Field::new("Employees", DataType::Utf8, true)];
        let columns: Vec<ArrayRef> =
            vec![Arc::new(StringArray::from(vec!["a"])), Arc::new(StringArray::from(vec!["many"]))];
        let err = t.append(&RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()).unwrap_err();
        assert!(err.message.contains("p.d.t") && err.message.contains("Employees"), "{}", err.message);
    }
}
