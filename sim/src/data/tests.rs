use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::soql;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).single().unwrap_or_default()
}

fn spec(seed: u64, n: usize) -> DataSpec {
    DataSpec::new(
        vec![("Account".to_owned(), n), ("Contact".to_owned(), n), ("Opportunity".to_owned(), n)],
        seed,
        start(),
    )
}

/// Every field of every record of `object`, rendered as the Bulk CSV cells would be.
fn dump(data: &Dataset, object: &str) -> String {
    let Some(schema) = data.schema(object) else {
        return String::new();
    };
    let fields: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
    let soql = format!("SELECT {} FROM {object}", fields.join(", "));
    let rows = soql::parse(&soql).and_then(|q| soql::execute(&q, data));
    let Ok(rows) = rows else { panic!("{soql}: {rows:?}") };
    (0..rows.len()).map(|i| format!("{:?}\n", rows.row(i))).collect()
}

fn dump_all(data: &Dataset) -> String {
    ["Account", "Contact", "Opportunity", "User"].iter().map(|o| dump(data, o)).collect()
}

fn column(data: &Dataset, soql: &str, col: usize) -> Vec<Option<String>> {
    let rows = soql::parse(soql).and_then(|q| soql::execute(&q, data));
    let Ok(rows) = rows else { panic!("{soql}: {rows:?}") };
    (0..rows.len()).map(|i| rows.row(i)[col].clone()).collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = dump_all(&Dataset::generate(&spec(7, 300)));
    let b = dump_all(&Dataset::generate(&spec(7, 300)));
    let c = dump_all(&Dataset::generate(&spec(8, 300)));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut later = spec(7, 300);
    later.start += chrono::Duration::hours(1);
    assert_ne!(a, dump_all(&Dataset::generate(&later)));
}

#[test]
fn counts_schemas_and_case_insensitive_lookup() {
    let data = Dataset::generate(&spec(1, 50));
    assert_eq!(data.record_count("account"), 50);
    assert_eq!(data.record_count("OPPORTUNITY"), 50);
    assert_eq!(data.record_count("User"), DataSpec::DEFAULT_USERS);
    assert_eq!(data.record_count("Lead"), 0);
    assert_eq!(data.schema("contact").map(|s| s.name.as_str()), Some("Contact"));
    assert!(data.schema("Lead").is_none());
    let names: Vec<&str> = data.objects().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Account", "Contact", "Opportunity", "User"]);
    let account = data.schema("Account").map(|s| s.fields.clone()).unwrap_or_default();
    for required in [
        "Id",
        "Name",
        "Type",
        "Industry",
        "AnnualRevenue",
        "CreatedDate",
        "LastModifiedDate",
        "Phone",
        "Website",
        "BillingCity",
        "BillingCountry",
        "NumberOfEmployees",
        "OwnerId",
        "Description",
        "IsDeleted",
        "SystemModstamp",
    ] {
        assert!(account.iter().any(|f| f.name == required), "Account.{required}");
    }
    let owner = account.iter().find(|f| f.name == "OwnerId");
    assert_eq!(owner.and_then(|f| f.relationship_name.as_deref()), Some("Owner"));
    assert_eq!(owner.and_then(|f| f.reference_to.as_deref()), Some("User"));
    assert!(Dataset::try_generate(&DataSpec::new(vec![("Lead".into(), 1)], 0, start())).is_err());
}

#[test]
fn ids_have_prefixes_checksums_and_are_unique() {
    let data = Dataset::generate(&spec(3, 2000));
    for (object, prefix) in [("Account", "001"), ("Contact", "003"), ("Opportunity", "006"), ("User", "005")] {
        let ids = data.ids(object);
        assert_eq!(ids.len(), data.record_count(object));
        for id in &ids {
            assert_eq!(id.len(), 18);
            assert!(id.starts_with(prefix), "{id}");
            assert_eq!(ids::to_18(&id[..15]).as_deref(), Some(id.as_str()));
        }
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "{object} ids are unique");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{object} ids sort in creation order");
    }
}

#[test]
fn timestamps_fall_in_the_window_and_are_consistent() {
    let data = Dataset::generate(&spec(5, 3000));
    for object in ["Account", "Contact", "Opportunity"] {
        let soql = format!("SELECT CreatedDate, LastModifiedDate, SystemModstamp, IsDeleted FROM {object}");
        let rows = soql::parse(&soql).and_then(|q| soql::execute(&q, &data));
        let Ok(rows) = rows else { panic!("{rows:?}") };
        let mut ties = 0;
        let mut previous = String::new();
        for i in 0..rows.len() {
            let row: Vec<String> = rows.row(i).into_iter().map(Option::unwrap_or_default).collect();
            assert!(row[0] <= row[1], "created after modified: {row:?}");
            assert!(row[1] <= row[2], "modstamp before modified: {row:?}");
            assert!(row[1].as_str() >= "2026-11-24T10:00:00.000Z", "{row:?}");
            assert!(row[2].as_str() < "2026-11-25T09:00:00.000Z", "{row:?}");
            assert!(row[1].ends_with(".000Z"));
            assert_eq!(row[3], "false");
            ties += usize::from(row[1] == previous);
            previous = row[1].clone();
        }
        assert!(ties > 50, "{object}: records sharing a LastModifiedDate: {ties}");
    }
}

#[test]
fn values_include_what_breaks_naive_csv() {
    let data = Dataset::generate(&spec(11, 2000));
    let all = dump_all(&data);
    for needle in ["\\\"", ",", "\\n", "\\r\\n", "ü", "東京", "'"] {
        assert!(all.contains(needle), "no {needle:?} in the data");
    }
    let names = column(&data, "SELECT Name FROM Account", 0);
    assert!(names.iter().flatten().any(|n| n.contains('\n')));
    assert!(names.iter().flatten().any(|n| n.contains('"')));
    let revenue = column(&data, "SELECT AnnualRevenue FROM Account", 0);
    assert!(revenue.iter().any(Option::is_none));
    assert!(revenue.iter().flatten().all(|r| r.parse::<f64>().is_ok() && !r.contains('e')));
    let birthdates = column(&data, "SELECT Birthdate FROM Contact", 0);
    assert!(birthdates.iter().flatten().all(|d| d.len() == 10 && d.as_bytes()[4] == b'-'));
    let flags = column(&data, "SELECT HasOptedOutOfEmail FROM Contact", 0);
    assert!(flags.iter().flatten().any(|f| f == "true") && flags.iter().flatten().any(|f| f == "false"));
}

#[test]
fn opportunities_are_internally_consistent() {
    let data = Dataset::generate(&spec(2, 1000));
    let rows = soql::parse("SELECT StageName, Probability, IsClosed, IsWon FROM Opportunity")
        .and_then(|q| soql::execute(&q, &data));
    let Ok(rows) = rows else { panic!("{rows:?}") };
    for i in 0..rows.len() {
        let row: Vec<String> = rows.row(i).into_iter().map(Option::unwrap_or_default).collect();
        let closed = row[0].starts_with("Closed");
        assert_eq!(row[2], closed.to_string());
        assert_eq!(row[3], (row[0] == "Closed Won").to_string());
        if row[0] == "Closed Won" {
            assert_eq!(row[1], "100");
        }
    }
}

#[test]
fn lookups_point_at_existing_parents() {
    let data = Dataset::generate(&spec(9, 500));
    let accounts = data.ids("Account");
    let users = data.ids("User");
    for (soql, parents) in [
        ("SELECT AccountId FROM Contact", &accounts),
        ("SELECT AccountId FROM Opportunity", &accounts),
        ("SELECT OwnerId FROM Account", &users),
        ("SELECT CreatedById FROM Opportunity", &users),
    ] {
        let values = column(&data, soql, 0);
        assert!(values.iter().flatten().all(|id| parents.contains(id)), "{soql}");
    }
    let contacts = column(&data, "SELECT AccountId FROM Contact", 0);
    assert!(contacts.iter().any(Option::is_none), "some contacts are private");
}

#[test]
fn changes_modify_and_insert_deterministically() {
    let mut data = Dataset::generate(&spec(4, 1000));
    let before = dump_all(&data);
    let now = start() + chrono::Duration::minutes(5);
    data.apply_changes(30, 12, now);
    let total: usize = ["Account", "Contact", "Opportunity"].iter().map(|o| data.record_count(o)).sum();
    assert_eq!(total, 3012);
    let stamp = "2026-11-25T09:05:00.000Z";
    let mut touched = 0;
    for object in ["Account", "Contact", "Opportunity"] {
        let soql = format!(
            "SELECT Id, LastModifiedDate, SystemModstamp, CreatedDate FROM {object} WHERE LastModifiedDate = 2026-11-25T09:05:00Z"
        );
        let rows = soql::parse(&soql).and_then(|q| soql::execute(&q, &data));
        let Ok(rows) = rows else { panic!("{rows:?}") };
        touched += rows.len();
        for i in 0..rows.len() {
            let row = rows.row(i);
            assert_eq!(row[2].as_deref(), Some(stamp));
        }
    }
    // Modifications may land on the same record twice; inserts are always new.
    assert!((12 + 25..=42).contains(&touched), "touched {touched}");
    let after = dump_all(&data);
    assert_ne!(before, after);

    let mut replay = Dataset::generate(&spec(4, 1000));
    replay.apply_changes(30, 12, now);
    assert_eq!(after, dump_all(&replay));
    let mut split = Dataset::generate(&spec(4, 1000));
    split.apply_changes(10, 12, now);
    assert_ne!(after, dump_all(&split), "a different history is a different org");
}

#[test]
fn modified_records_change_a_field_but_keep_their_identity() {
    let mut data = Dataset::generate(&DataSpec::new(vec![("Account".into(), 1)], 6, start()));
    let soql =
        "SELECT Id, Name, CreatedDate, AnnualRevenue, Phone, NumberOfEmployees, OwnerId, Description FROM Account";
    let before = column_rows(&data, soql);
    data.apply_changes(1, 0, start() + chrono::Duration::seconds(1));
    let after = column_rows(&data, soql);
    assert_eq!(before[0][..3], after[0][..3]);
    assert_ne!(before[0][3..], after[0][3..]);
}

fn column_rows(data: &Dataset, soql: &str) -> Vec<Vec<Option<String>>> {
    let rows = soql::parse(soql).and_then(|q| soql::execute(&q, data));
    let Ok(rows) = rows else { panic!("{rows:?}") };
    (0..rows.len()).map(|i| rows.row(i)).collect()
}

#[test]
fn persisted_state_rebuilds_the_same_org() {
    let mut data = Dataset::generate(&spec(12, 400));
    data.apply_changes(20, 5, start() + chrono::Duration::seconds(10));
    data.apply_changes(7, 3, start() + chrono::Duration::seconds(20));
    let json = serde_json::to_string(&data).unwrap_or_default();
    assert!(json.len() < 1000, "persisted form is tiny: {} bytes", json.len());
    let restored: Dataset = match serde_json::from_str(&json) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(dump_all(&data), dump_all(&restored));
    assert_eq!(restored.change_batches(), 2);
    assert_eq!(Dataset::from_state(&data.state()).ids("Account"), data.ids("Account"));
}

#[test]
fn dataset_and_results_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Dataset>();
    check::<soql::ResultSet>();
}

/// `cargo test -p bulkflow-sim --release -- --ignored --nocapture million`
#[test]
#[ignore = "a measurement: run in release"]
fn million_accounts_measurement() {
    let t = std::time::Instant::now();
    let data = Dataset::generate(&DataSpec::new(vec![("Account".into(), 1_000_000)], 1, start()));
    let generated = t.elapsed();
    let rss_after_generate = peak_rss_kb();
    let query = soql::parse(
        "SELECT Id, Name, Type, Industry, AnnualRevenue, CreatedDate, LastModifiedDate FROM Account WHERE LastModifiedDate >= 2026-11-24T09:00:00Z ORDER BY LastModifiedDate ASC",
    );
    let Ok(query) = query else { panic!("{query:?}") };
    let t = std::time::Instant::now();
    let rows = soql::execute(&query, &data);
    let executed = t.elapsed();
    let Ok(rows) = rows else { panic!("{rows:?}") };
    let t = std::time::Instant::now();
    let bytes: usize = (0..rows.len()).map(|i| rows.row(i).iter().flatten().map(String::len).sum::<usize>()).sum();
    let rendered = t.elapsed();
    let t = std::time::Instant::now();
    let filtered = soql::parse("SELECT Id FROM Account WHERE Name LIKE 'acme%' AND Industry != null ORDER BY Name")
        .and_then(|q| soql::execute(&q, &data));
    let generated_filter = t.elapsed();
    println!(
        "generate 1M: {generated:?}; peak RSS after generate {rss_after_generate} kB; \
         execute seed query: {executed:?} ({} rows); render all rows: {rendered:?} ({bytes} bytes); \
         LIKE+ORDER BY Name: {generated_filter:?} ({} rows); peak RSS {} kB",
        rows.len(),
        filtered.map(|r| r.len()).unwrap_or_default(),
        peak_rss_kb()
    );
    assert_eq!(rows.len(), 1_000_000);
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
