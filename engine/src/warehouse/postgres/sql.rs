//! The SQL the PostgreSQL warehouse sends: quoted identifiers (Salesforce's spelling, `"Id"`,
//! `"LastModifiedDate"`), the table's DDL from a schema, and which PostgreSQL column types take
//! which Arrow types.

use arrow::datatypes::DataType;

use crate::schema::{FieldType, TableSchema};
use crate::warehouse::ID;

/// `"name"`, with embedded quotes doubled: column names come from batches, never trusted as SQL.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table, optionally in a schema; displayed as `schema.table` in errors.
#[derive(Debug, Clone)]
pub struct TableName {
    pub schema: Option<String>,
    pub table: String,
}

impl TableName {
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", ident(s), ident(&self.table)),
            None => ident(&self.table),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

fn column_type(ty: FieldType) -> String {
    match ty {
        FieldType::String => "text".into(),
        FieldType::Boolean => "boolean".into(),
        FieldType::Int64 => "bigint".into(),
        FieldType::Float64 => "double precision".into(),
        FieldType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
        FieldType::Date => "date".into(),
        FieldType::Timestamp => "timestamp with time zone".into(),
    }
}

/// `CREATE TABLE IF NOT EXISTS` for `schema`, keyed by `"Id"` (which the schema must have).
pub fn create_table(table: &TableName, schema: &TableSchema) -> Result<String, String> {
    if !schema.fields.iter().any(|f| f.name == ID) {
        return Err(format!("the schema has no `{ID}` field to key the table by"));
    }
    let columns: Vec<String> = schema
        .fields
        .iter()
        .map(|f| {
            let key = if f.name == ID {
                " PRIMARY KEY"
            } else if f.nullable {
                ""
            } else {
                " NOT NULL"
            };
            format!("{} {}{key}", ident(&f.name), column_type(f.ty))
        })
        .collect();
    let mut sql = String::new();
    if let Some(s) = &table.schema {
        sql.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {};\n", ident(s)));
    }
    sql.push_str(&format!("CREATE TABLE IF NOT EXISTS {} ({})", table.sql(), columns.join(", ")));
    Ok(sql)
}

/// The PostgreSQL column types (`information_schema.columns.data_type`) a batch column of type
/// `arrow` may be written to; `None` for an Arrow type the writer does not take.
pub fn accepts(arrow: &DataType) -> Option<&'static [&'static str]> {
    const NUMBERS: &[&str] = &["bigint", "integer", "smallint", "numeric", "double precision", "real"];
    Some(match arrow {
        DataType::Utf8 | DataType::LargeUtf8 => &["text", "character varying", "character"],
        DataType::Boolean => &["boolean"],
        DataType::Int64 | DataType::Float64 | DataType::Decimal128(..) => NUMBERS,
        DataType::Date32 => &["date", "timestamp without time zone", "timestamp with time zone"],
        DataType::Timestamp(..) => &["timestamp with time zone", "timestamp without time zone"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_keep_salesforce_spelling_and_cannot_escape() {
        assert_eq!(ident("LastModifiedDate"), "\"LastModifiedDate\"");
        assert_eq!(ident("a\"; DROP TABLE x; --"), "\"a\"\"; DROP TABLE x; --\"");
        let t = TableName { schema: Some("salesforce".into()), table: "account".into() };
        assert_eq!(t.sql(), "\"salesforce\".\"account\"");
        assert_eq!(t.to_string(), "salesforce.account");
    }

    #[test]
    fn the_account_schema_becomes_a_table_keyed_by_id() {
        let schema =
            TableSchema::from_json(include_str!("../../../../resources/salesforce/schema_account.json")).unwrap();
        let t = TableName { schema: Some("salesforce".into()), table: "account".into() };
        let sql = create_table(&t, &schema).unwrap();
        assert!(sql.starts_with("CREATE SCHEMA IF NOT EXISTS \"salesforce\";\nCREATE TABLE IF NOT EXISTS \"salesforce\".\"account\" (\"Id\" text PRIMARY KEY"), "{sql}");
        assert!(sql.contains("\"LastModifiedDate\" timestamp with time zone"), "{sql}");

        let no_id = TableSchema::from_json(r#"{"fields": [{"name": "Name", "type": "string"}]}"#).unwrap();
        assert!(create_table(&t, &no_id).unwrap_err().contains("`Id`"));
    }
}
