//! A Bulk API page of Accounts as text, for the benchmarks: the seed's 7 columns, a third of
//! `Type` and a seventh of `AnnualRevenue` empty. Included with
//! `#[path = "support/text_page.rs"] mod text_page;`.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

/// `rows` rows whose Ids carry `batch`, so the pages of one run never share an Id.
pub fn account_page(batch: usize, rows: usize) -> RecordBatch {
    let col = |f: &dyn Fn(usize) -> String| -> ArrayRef { Arc::new(StringArray::from_iter_values((0..rows).map(f))) };
    let names = ["Id", "Name", "Type", "Industry", "AnnualRevenue", "CreatedDate", "LastModifiedDate"];
    let columns = vec![
        col(&|i| format!("001R{batch:04}{i:010}")),
        col(&|i| format!("Account number {i}, Incorporated")),
        col(&|i| ["Customer", "Partner", ""][i % 3].to_string()),
        col(&|i| ["Energy", "Banking", "Retail", "Media"][i % 4].to_string()),
        col(&|i| if i % 7 == 0 { String::new() } else { format!("{}.{:02}", i * 37, i % 100) }),
        col(&|i| format!("2024-{:02}-{:02}T{:02}:{:02}:00.000Z", i % 12 + 1, i % 28 + 1, i % 24, i % 60)),
        col(&|i| format!("2026-11-25T08:{:02}:{:02}.000+0000", i % 60, i % 60)),
    ];
    let schema = Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>());
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}
