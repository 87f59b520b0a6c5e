//! The SOQL subset Bulk API 2.0 export queries use: `SELECT` fields and child-to-parent paths
//! `FROM` one object, `WHERE` with comparisons, `IN`, `LIKE`, `NOT`, `AND`/`OR` and parentheses,
//! `ORDER BY` and `LIMIT`. What Bulk API 2.0 refuses (GROUP BY, OFFSET, TYPEOF, aggregates,
//! FIELDS(), parent-to-child subqueries, compound fields) fails with the API's error.
//!
//! Keywords, object names and field names are case-insensitive; text comparisons too.

mod ast;
mod error;
mod eval;
mod lexer;
mod like;
mod parser;
mod resolve;
mod result;
mod row;
mod sort;

pub use error::SoqlError;
pub use result::ResultSet;

use crate::data::Dataset;

/// A parsed query, not yet checked against any schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    soql: String,
    object: String,
    object_pos: usize,
    alias: Option<String>,
    select: Vec<ast::Path>,
    filter: Option<ast::Expr>,
    order: Vec<ast::OrderItem>,
    limit: Option<u64>,
}

impl Query {
    /// The object as written in FROM; [`Dataset::schema`] gives its canonical name.
    pub fn object(&self) -> &str {
        &self.object
    }

    pub fn soql(&self) -> &str {
        &self.soql
    }
}

/// Syntax only: `MALFORMED_QUERY` for what is not SOQL, `API_ERROR` for SOQL Bulk API 2.0 refuses.
pub fn parse(soql: &str) -> Result<Query, SoqlError> {
    parser::parse(soql)
}

/// Checks the query against the dataset's schemas (`INVALID_TYPE`, `INVALIDENTITY`,
/// `INVALID_FIELD`, ...) without running it: what Salesforce reports when the job is created.
pub fn validate(query: &Query, data: &Dataset) -> Result<(), SoqlError> {
    resolve::resolve(query, data).map(|_| ())
}

/// Which records a query sees: `query` jobs the live ones; `queryAll` jobs those in the Recycle
/// Bin too (with `IsDeleted` true). Records purged from the bin are never seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Live,
    WithRecycled,
}

/// Resolves, filters, orders and limits the live records, and snapshots the matching rows, so
/// the job's results stay the same however the dataset changes afterwards.
pub fn execute(query: &Query, data: &Dataset) -> Result<ResultSet, SoqlError> {
    execute_in(query, data, Scope::Live)
}

/// [`execute`] over the records `scope` sees.
pub fn execute_in(query: &Query, data: &Dataset, scope: Scope) -> Result<ResultSet, SoqlError> {
    let plan = resolve::resolve(query, data)?;
    Ok(result::run(&plan, data, scope))
}

#[cfg(test)]
mod tests;
