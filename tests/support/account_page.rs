//! A Bulk API results page of Accounts as the reader hands it on: every column text, plus a
//! relationship column the schema drops. Included with
//! `#[path = "support/account_page.rs"] mod account_page;`.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bulkflow_engine::event::{Event, EventData};
use serde_json::json;

pub const JOB: &str = "750R0000009WhS";
pub const RUN: &str = "salesforce_bulkapi_query_account@2026-11-25T09:05:00Z";

/// Page `page`'s only batch (`<JOB>-p<page>-b0`), `rows` rows whose names end in `name_suffix`.
pub fn bulk_batch(page: usize, rows: usize, name_suffix: &str) -> Event {
    let col = |f: &dyn Fn(usize) -> String| -> ArrayRef { Arc::new(StringArray::from_iter_values((0..rows).map(f))) };
    let names = ["Id", "Name", "Type", "Industry", "AnnualRevenue", "CreatedDate", "LastModifiedDate", "Owner.Name"];
    let columns = vec![
        col(&|i| format!("001W{page}{i:010}")),
        col(&|i| format!("Account {i}{name_suffix}")),
        col(&|i| if i % 3 == 0 { String::new() } else { "Customer".into() }),
        col(&|_| "Energy".into()),
        col(&|i| if i % 5 == 0 { String::new() } else { format!("{i}.25") }),
        col(&|_| "2024-01-01T00:00:00.000Z".into()),
        col(&|i| format!("2026-11-25T08:{:02}:00.000+0000", i % 60)),
        col(&|_| "Owner".into()),
    ];
    let schema = Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>());
    let mut event = Event::json(format!("{JOB}-p{page}-b0"), json!(null));
    event.data = EventData::Arrow(RecordBatch::try_new(Arc::new(schema), columns).unwrap());
    event.subject = Some("salesforce_bulkapi.query_jobs.account".into());
    event.meta.insert("run_id".into(), json!(RUN));
    event.meta.insert("job_id".into(), json!(JOB));
    event
}
