use chrono::{TimeZone, Utc};

use super::*;
use crate::data::DataSpec;

const SEED_QUERY: &str = "SELECT Id, Name, Type, Industry, AnnualRevenue, CreatedDate, LastModifiedDate FROM Account WHERE LastModifiedDate >= 2026-11-24T09:00:00Z ORDER BY LastModifiedDate ASC";

fn dataset(accounts: usize, contacts: usize, opportunities: usize) -> Dataset {
    let start = Utc
        .with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
        .single()
        .unwrap_or_default();
    Dataset::generate(&DataSpec::new(
        vec![
            ("Account".to_owned(), accounts),
            ("Contact".to_owned(), contacts),
            ("Opportunity".to_owned(), opportunities),
        ],
        42,
        start,
    ))
}

fn run(data: &Dataset, soql: &str) -> ResultSet {
    match parse(soql).and_then(|q| execute(&q, data)) {
        Ok(rows) => rows,
        Err(e) => panic!("{soql}: {e}"),
    }
}

#[test]
fn seed_query_returns_every_account_in_order() {
    let data = dataset(500, 0, 0);
    let rows = run(&data, SEED_QUERY);
    assert_eq!(
        rows.columns(),
        [
            "Id",
            "Name",
            "Type",
            "Industry",
            "AnnualRevenue",
            "CreatedDate",
            "LastModifiedDate"
        ]
    );
    assert_eq!(rows.len(), 500);
    let stamps: Vec<String> = (0..rows.len())
        .map(|i| rows.row(i)[6].clone().unwrap_or_default())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        stamps[0].as_str() >= "2026-11-24T10:00:00.000Z",
        "{}",
        stamps[0]
    );
    assert!(stamps[499].as_str() < "2026-11-25T09:00:00.000Z");
}
