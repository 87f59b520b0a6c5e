//! Exports every Account from a Salesforce (the simulator, started separately) through the Bulk
//! API client and prints what it read, so `/usr/bin/time -v` can measure peak memory against the
//! record count: it must not grow with it.
//!
//! ```sh
//! bulkflow sim serve --records Account=1000000 --credentials-out /tmp/c/etc/sfdc/credentials.json &
//! cargo run --example export_rss -p bulkflow-engine -- /tmp/c/etc/sfdc/credentials.json
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::salesforce::ClientSettings;
use bulkflow_engine::salesforce::Clients;
use bulkflow_engine::salesforce::bulk::{self, CreateJob};
use bulkflow_engine::salesforce::job_create;
use bulkflow_engine::salesforce::results::ResultsReader;
use bulkflow_engine::tasks::salesforce_bulkapi_query_job::config::{ColumnDelimiter, LineEnding, QueryOperation};

const SOQL: &str = "SELECT Id, Name, Type, Industry, AnnualRevenue, CreatedDate, LastModifiedDate FROM Account";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let creds = std::env::args().nth(1).ok_or("usage: export_rss CREDENTIALS_JSON")?;
    let clients = Clients::new(CredentialsRoot::default(), "63.0", ClientSettings::default());
    let client = clients.get(Path::new(&creds))?;
    let job = job_create::create_job_unrecorded(
        &client,
        &CreateJob {
            soql: SOQL,
            operation: QueryOperation::Query,
            column_delimiter: ColumnDelimiter::Comma,
            line_ending: LineEnding::Lf,
        },
    )
    .await?;
    let job = loop {
        let j = bulk::get_job(&client, &job.id).await?;
        if j.check_finished()? {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let started = Instant::now();
    let mut reader = ResultsReader::new(client, job, 10_000, None, None);
    let (mut pages, mut batches) = (0u64, 0u64);
    while let Some(page) = reader.next_page().await? {
        pages += 1;
        batches += page.batches.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "records={} pages={pages} batches={batches} seconds={secs:.2} records_per_second={:.0}",
        reader.rows(),
        reader.rows() as f64 / secs
    );
    Ok(())
}
