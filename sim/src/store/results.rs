//! A job's result rows: a live snapshot from the SOQL engine, or rows reloaded from disk after a
//! restart. Both answer the same three questions, so the results endpoint does not care which.

use crate::soql::ResultSet;

pub enum Results {
    Live(ResultSet),
    Stored(StoredRows),
}

/// Rows as persisted: no dataset needed to serve them again.
pub struct StoredRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Results {
    pub fn columns(&self) -> &[String] {
        match self {
            Results::Live(set) => set.columns(),
            Results::Stored(stored) => &stored.columns,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Results::Live(set) => set.len(),
            Results::Stored(stored) => stored.rows.len(),
        }
    }

    pub fn row(&self, i: usize) -> Vec<Option<String>> {
        match self {
            Results::Live(set) => set.row(i),
            Results::Stored(stored) => stored.rows[i].clone(),
        }
    }
}
