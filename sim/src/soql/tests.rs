use chrono::{TimeZone, Utc};

use super::*;
use crate::data::DataSpec;

const SEED_QUERY: &str = "SELECT Id, Name, Type, Industry, AnnualRevenue, CreatedDate, LastModifiedDate FROM Account WHERE LastModifiedDate >= 2026-11-24T09:00:00Z ORDER BY LastModifiedDate ASC";

fn dataset(accounts: usize, contacts: usize, opportunities: usize) -> Dataset {
    let start = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).single().unwrap_or_default();
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
    assert_eq!(rows.columns(), ["Id", "Name", "Type", "Industry", "AnnualRevenue", "CreatedDate", "LastModifiedDate"]);
    assert_eq!(rows.len(), 500);
    let stamps: Vec<String> = (0..rows.len()).map(|i| rows.row(i)[6].clone().unwrap_or_default()).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    assert!(stamps[0].as_str() >= "2026-11-24T10:00:00.000Z", "{}", stamps[0]);
    assert!(stamps[499].as_str() < "2026-11-25T09:00:00.000Z");
}

fn error(data: &Dataset, soql: &str) -> SoqlError {
    match parse(soql).and_then(|q| execute(&q, data)) {
        Ok(rows) => panic!("{soql}: expected an error, got {} rows", rows.len()),
        Err(e) => e,
    }
}

fn code(data: &Dataset, soql: &str) -> String {
    error(data, soql).error_code
}

fn rows(data: &Dataset, soql: &str) -> Vec<Vec<Option<String>>> {
    let result = run(data, soql);
    (0..result.len()).map(|i| result.row(i)).collect()
}

fn count(data: &Dataset, soql: &str) -> usize {
    run(data, soql).len()
}

#[test]
fn keywords_objects_and_fields_are_case_insensitive() {
    let data = dataset(50, 0, 0);
    let result = run(
        &data,
        "select id, NAME, owner.NAME from ACCOUNT where lastmodifieddate >= 2026-01-01T00:00:00Z order by NAME asc limit 5",
    );
    assert_eq!(result.columns(), ["Id", "Name", "Owner.Name"]);
    assert_eq!(result.object(), "Account");
    assert_eq!(result.len(), 5);
}

#[test]
fn parser_accepts_every_supported_construct() {
    let data = dataset(200, 200, 200);
    for soql in [
        "SELECT Id FROM Account",
        "SELECT Id, Name FROM Account WHERE Name = 'x'",
        "SELECT Id FROM Account WHERE Name != 'x' AND Name <> 'y'",
        "SELECT Id FROM Account WHERE (Name = 'x' OR Name = 'y') AND Industry = null",
        "SELECT Id FROM Account WHERE NOT Name = 'x'",
        "SELECT Id FROM Account WHERE NOT (Name = 'x' OR Type != null)",
        "SELECT Id FROM Account WHERE Name IN ('a', 'b') OR Name NOT IN ('c')",
        "SELECT Id FROM Account WHERE Name LIKE 'A%' AND Name LIKE '%\\%%'",
        "SELECT Id FROM Account WHERE (AnnualRevenue > 1000 AND AnnualRevenue <= 1e9) OR Id = null",
        "SELECT Id FROM Account WHERE NumberOfEmployees >= -5",
        "SELECT Id FROM Account WHERE CreatedDate < 2024-01-01T00:00:00.000+01:00",
        "SELECT Id FROM Contact WHERE Birthdate > 1980-01-01",
        "SELECT Id FROM Contact WHERE HasOptedOutOfEmail = true",
        "SELECT Id FROM Contact WHERE Account.Owner.Name = 'Ada Lovelace'",
        "SELECT Id, Account.Name FROM Contact ORDER BY Account.Name DESC NULLS LAST, Id",
        "SELECT a.Id, a.Name FROM Account a WHERE a.Name != null",
        "SELECT Account.Id FROM Account",
        "SELECT Id FROM Account ORDER BY Name NULLS FIRST LIMIT 0",
        "SELECT Id FROM Account WHERE Id = '001Hn0000000000'",
        "  SELECT\n Id\n FROM\n Account\n ",
    ] {
        let soql = soql.replace("1e9", "1000000000");
        run(&data, &soql);
    }
}

#[test]
fn bulk_refusals_answer_like_the_api() {
    let data = dataset(10, 10, 10);
    for (soql, expected_code, message) in [
        ("SELECT COUNT() FROM Account", "API_ERROR", "Aggregate Queries not supported in Bulk Query"),
        ("SELECT count(Id) FROM Account", "API_ERROR", "Aggregate Queries not supported in Bulk Query"),
        ("SELECT Industry, SUM(AnnualRevenue) FROM Account GROUP BY Industry", "API_ERROR", "Aggregate Queries"),
        ("SELECT Industry FROM Account GROUP BY Industry", "API_ERROR", "GROUP BY not supported in Bulk Query"),
        ("SELECT Id FROM Account LIMIT 10 OFFSET 5", "API_ERROR", "OFFSET not supported in Bulk Query"),
        ("SELECT Id FROM Account OFFSET 5", "API_ERROR", "OFFSET"),
        ("SELECT TYPEOF Owner WHEN User THEN Name END FROM Account", "API_ERROR", "TYPEOF not supported"),
        ("SELECT FIELDS(ALL) FROM Account LIMIT 200", "API_ERROR", "FIELDS() not supported"),
        (
            "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
            "API_ERROR",
            "Aggregate Relationships not supported in Bulk Query",
        ),
        ("SELECT BillingAddress FROM Account", "API_ERROR", "Selecting compound data not supported in Bulk Query"),
        ("SELECT Id, Account.BillingAddress FROM Contact", "API_ERROR", "Selecting compound data"),
        ("SELECT Id FROM TaskStatus", "INVALIDENTITY", "Entity 'TaskStatus' is not supported by the Bulk API."),
        ("SELECT Id FROM Lead", "INVALID_TYPE", "sObject type 'Lead' is not supported."),
    ] {
        let e = error(&data, soql);
        assert_eq!(e.error_code, expected_code, "{soql}: {e}");
        assert!(e.message.contains(message), "{soql}: {}", e.message);
    }
}

#[test]
fn malformed_queries() {
    let data = dataset(10, 0, 0);
    for soql in [
        "",
        "UPDATE Account",
        "SELECT FROM Account",
        "SELECT Id Account",
        "SELECT Id, FROM Account",
        "SELECT Id FROM",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'",
        "SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' AND Name = 'c'",
        "SELECT Id FROM Account WHERE (Name = 'a'",
        "SELECT Id FROM Account WHERE Name = :name",
        "SELECT Id FROM Account WHERE Name == 'a'",
        "SELECT Id FROM Account WHERE Name = 'unterminated",
        "SELECT Id FROM Account WHERE CreatedDate > 2024-01-01T00:00:00",
        "SELECT Id FROM Account WHERE Name NOT LIKE 'a'",
        "SELECT Id FROM Account WHERE Name = bogus",
        "SELECT Id FROM Account LIMIT 1.5",
        "SELECT Id FROM Account LIMIT -1",
        "SELECT Id FROM Account ORDER Name",
        "SELECT Id FROM Account ORDER BY Name NULLS",
        "SELECT Id FROM Account trailing words",
        "SELECT Id, Name, Id FROM Account",
        "SELECT Id FROM Account; DROP",
    ] {
        assert_eq!(code(&data, soql), "MALFORMED_QUERY", "{soql}");
    }
    let e = error(&data, "SELECT Id FRM Account");
    assert_eq!(e.error_code, "MALFORMED_QUERY");
    assert!(e.message.contains("ERROR at Row:1:Column:"), "{}", e.message);
}

#[test]
fn invalid_fields_and_filters() {
    let data = dataset(10, 10, 10);
    for (soql, expected_code, message) in [
        ("SELECT Nme FROM Account", "INVALID_FIELD", "No such column 'Nme' on entity 'Account'"),
        ("SELECT Id FROM Account WHERE Nme = 'x'", "INVALID_FIELD", "No such column 'Nme'"),
        ("SELECT Id FROM Account ORDER BY Nme", "INVALID_FIELD", "No such column"),
        ("SELECT Boss.Name FROM Account", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
        ("SELECT Owner.Nme FROM Account", "INVALID_FIELD", "No such column 'Nme' on entity 'User'"),
        ("SELECT Owner FROM Account", "INVALID_FIELD", "No such column 'Owner'"),
        (
            "SELECT Id FROM Account WHERE LastModifiedDate > 2024-01-01",
            "INVALID_FIELD",
            "must be of type dateTime and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Account WHERE LastModifiedDate > '2024-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        ("SELECT Id FROM Contact WHERE Birthdate > 2024-01-01T00:00:00Z", "INVALID_FIELD", "must be of type date "),
        (
            "SELECT Id FROM Account WHERE Name = 5",
            "INVALID_FIELD",
            "must be of type string and should be enclosed in quotes",
        ),
        ("SELECT Id FROM Account WHERE AnnualRevenue = '5'", "INVALID_FIELD", "must be of type currency"),
        ("SELECT Id FROM Account WHERE IsDeleted = 'false'", "INVALID_FIELD", "must be of type boolean"),
        ("SELECT Id FROM Account WHERE Name IN ('a', 3)", "INVALID_FIELD", "must be of type string"),
        ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD", "field 'Description' can not be filtered"),
        ("SELECT Id FROM Account ORDER BY Description", "INVALID_FIELD", "field 'Description' can not be sorted"),
        ("SELECT Id FROM Account WHERE AnnualRevenue LIKE '1%'", "INVALID_FIELD", "invalid operator"),
        (
            "SELECT Id FROM Account WHERE Id = 'not-an-id'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: not-an-id",
        ),
        ("SELECT Id FROM Account WHERE IsDeleted > false", "INVALID_QUERY_FILTER_OPERATOR", "invalid operator"),
        ("SELECT Id FROM Account WHERE Name > null", "INVALID_QUERY_FILTER_OPERATOR", "invalid operator"),
    ] {
        let e = error(&data, soql);
        assert_eq!(e.error_code, expected_code, "{soql}: {e}");
        assert!(e.message.contains(message), "{soql}: {}", e.message);
    }
    let e = error(&data, "SELECT Id, Nme FROM Account");
    assert!(
        e.message.starts_with("\nSELECT Id, Nme FROM Account\n           ^\nERROR at Row:1:Column:12\n"),
        "{}",
        e.message
    );
}

#[test]
fn unsupported_but_valid_soql_says_it_is_the_simulator() {
    let data = dataset(10, 10, 10);
    for soql in [
        "SELECT Id FROM Account WHERE CreatedDate = TODAY",
        "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:7",
        "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
        "SELECT Id FROM Account WHERE CALENDAR_YEAR(CreatedDate) = 2024",
        "SELECT toLabel(Industry) FROM Account",
        "SELECT Id FROM Account WITH SECURITY_ENFORCED",
        "SELECT Id FROM Account USING SCOPE Mine",
        "SELECT Id FROM Account FOR VIEW",
    ] {
        let e = error(&data, soql);
        assert_eq!(e.error_code, "API_ERROR", "{soql}");
        assert!(e.message.contains("simulator"), "{soql}: {}", e.message);
    }
}

/// Every (Name, Industry, AnnualRevenue, Type) of the accounts, to check filters by brute force.
fn accounts(data: &Dataset) -> Vec<Vec<Option<String>>> {
    rows(data, "SELECT Id, Name, Industry, AnnualRevenue, Type, LastModifiedDate FROM Account")
}

#[test]
fn null_semantics() {
    let data = dataset(1000, 0, 0);
    let all = accounts(&data);
    let banking = |r: &Vec<Option<String>>| r[2].as_deref() == Some("Banking");
    let nulls = all.iter().filter(|r| r[2].is_none()).count();
    assert!(nulls > 0);
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE Industry = null"), nulls);
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE Industry != null"), all.len() - nulls);
    assert_eq!(
        count(&data, "SELECT Id FROM Account WHERE Industry = 'banking'"),
        all.iter().filter(|r| banking(r)).count()
    );
    // SOQL's != keeps nulls, unlike SQL's.
    assert_eq!(
        count(&data, "SELECT Id FROM Account WHERE Industry != 'Banking'"),
        all.iter().filter(|r| !banking(r)).count()
    );
    // ... but NOT IN, IN, < and LIKE never match a null.
    assert_eq!(
        count(&data, "SELECT Id FROM Account WHERE Industry NOT IN ('Banking')"),
        all.iter().filter(|r| r[2].is_some() && !banking(r)).count()
    );
    assert_eq!(
        count(&data, "SELECT Id FROM Account WHERE Industry IN ('Banking', null)"),
        all.iter().filter(|r| r[2].is_none() || banking(r)).count()
    );
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE Industry < 'zzz'"), all.len() - nulls);
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE Industry LIKE '%'"), all.len() - nulls);
    let revenue_nulls = all.iter().filter(|r| r[3].is_none()).count();
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE AnnualRevenue >= 0"), all.len() - revenue_nulls);
    // A null boolean is false, and `= null` on a boolean means `= false`.
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE IsDeleted = null"), all.len());
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE IsDeleted != null"), 0);
}

#[test]
fn comparisons_and_boolean_logic() {
    let data = dataset(1000, 0, 0);
    let all = accounts(&data);
    let revenue = |r: &Vec<Option<String>>| r[3].as_deref().and_then(|v| v.parse::<f64>().ok());
    let big = all.iter().filter(|r| revenue(r).is_some_and(|v| v > 5_000_000.0)).count();
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE AnnualRevenue > 5000000"), big);
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE AnnualRevenue > 5000000.0"), big);
    let tech_or_banking = all.iter().filter(|r| matches!(r[2].as_deref(), Some("Technology" | "Banking"))).count();
    assert_eq!(
        count(&data, "SELECT Id FROM Account WHERE Industry = 'Technology' OR Industry = 'BANKING'"),
        tech_or_banking
    );
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE Industry IN ('technology', 'Banking')"), tech_or_banking);
    assert_eq!(
        count(&data, "SELECT Id FROM Account WHERE NOT (Industry = 'Technology' OR Industry = 'Banking')"),
        all.len() - tech_or_banking
    );
    let both = all
        .iter()
        .filter(|r| r[2].as_deref() == Some("Technology") && revenue(r).is_some_and(|v| v > 5_000_000.0))
        .count();
    assert_eq!(
        count(&data, "SELECT Id FROM Account WHERE (Industry = 'Technology') AND (AnnualRevenue > 5000000)"),
        both
    );
    let quoted = all.iter().filter(|r| r[1].as_deref().is_some_and(|n| n.starts_with('"'))).count();
    assert!(quoted > 0);
    assert_eq!(count(&data, "SELECT Id FROM Account WHERE Name LIKE '\"%'"), quoted);
    let first = &all[0];
    let name = first[1].clone().unwrap_or_default().replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n");
    assert!(count(&data, &format!("SELECT Id FROM Account WHERE Name = '{name}'")) >= 1);
}

#[test]
fn datetime_literals_compare_as_instants() {
    let data = dataset(1000, 0, 0);
    let all = accounts(&data);
    let cut = "2026-11-24T21:00:00.000Z";
    let expected = all.iter().filter(|r| r[5].as_deref().is_some_and(|m| m >= cut)).count();
    assert!(expected > 0 && expected < all.len());
    for literal in
        ["2026-11-24T21:00:00Z", "2026-11-24T21:00:00.000Z", "2026-11-24T22:00:00+01:00", "2026-11-24T16:30:00-04:30"]
    {
        assert_eq!(
            count(&data, &format!("SELECT Id FROM Account WHERE LastModifiedDate >= {literal}")),
            expected,
            "{literal}"
        );
    }
    // Milliseconds count: a record stamped 21:00:00 is not after 21:00:00.001.
    let at_cut = all.iter().filter(|r| r[5].as_deref() == Some(cut)).count();
    assert_eq!(
        count(&data, "SELECT Id FROM Account WHERE LastModifiedDate > 2026-11-24T21:00:00.001Z"),
        expected - at_cut
    );
    let window = all
        .iter()
        .filter(|r| {
            r[5].as_deref().is_some_and(|m| ("2026-11-24T12:00:00.000Z".."2026-11-24T13:00:00.000Z").contains(&m))
        })
        .count();
    assert_eq!(
        count(
            &data,
            "SELECT Id FROM Account WHERE LastModifiedDate >= 2026-11-24T12:00:00Z AND LastModifiedDate < 2026-11-24T13:00:00Z"
        ),
        window
    );
}

#[test]
fn dates_and_booleans() {
    let data = dataset(10, 1000, 0);
    let all = rows(&data, "SELECT Birthdate, HasOptedOutOfEmail FROM Contact");
    let after = all.iter().filter(|r| r[0].as_deref().is_some_and(|d| d > "1980-06-15")).count();
    assert_eq!(count(&data, "SELECT Id FROM Contact WHERE Birthdate > 1980-06-15"), after);
    let opted = all.iter().filter(|r| r[1].as_deref() == Some("true")).count();
    assert_eq!(count(&data, "SELECT Id FROM Contact WHERE HasOptedOutOfEmail = TRUE"), opted);
    assert_eq!(count(&data, "SELECT Id FROM Contact WHERE HasOptedOutOfEmail != true"), all.len() - opted);
}

#[test]
fn ids_filter_in_15_and_18_character_forms() {
    let data = dataset(100, 0, 0);
    let ids = data.ids("Account");
    let id = &ids[42];
    for literal in
        [id.clone(), id[..15].to_owned(), id.to_lowercase()[..0].to_owned() + &id[..15] + &id[15..].to_lowercase()]
    {
        let result = rows(&data, &format!("SELECT Id FROM Account WHERE Id = '{literal}'"));
        assert_eq!(result, vec![vec![Some(id.clone())]], "{literal}");
    }
    // Ids range-compare in creation order: how PK chunking walks a table.
    assert_eq!(count(&data, &format!("SELECT Id FROM Account WHERE Id > '{id}'")), 57);
    let owner = rows(&data, "SELECT OwnerId FROM Account LIMIT 1")[0][0].clone().unwrap_or_default();
    let owned = rows(&data, "SELECT OwnerId FROM Account").iter().filter(|r| r[0].as_deref() == Some(&owner)).count();
    assert_eq!(count(&data, &format!("SELECT Id FROM Account WHERE OwnerId = '{owner}'")), owned);
}

#[test]
fn relationship_paths_resolve_to_the_parent() {
    let data = dataset(100, 300, 300);
    let accounts: std::collections::HashMap<String, Option<String>> = rows(&data, "SELECT Id, Name FROM Account")
        .into_iter()
        .map(|r| (r[0].clone().unwrap_or_default(), r[1].clone()))
        .collect();
    let users: std::collections::HashMap<String, Option<String>> = rows(&data, "SELECT Id, Name FROM User")
        .into_iter()
        .map(|r| (r[0].clone().unwrap_or_default(), r[1].clone()))
        .collect();
    let contacts = run(
        &data,
        "SELECT Id, AccountId, Account.Name, Owner.Name, OwnerId, Account.Owner.Name, Account.OwnerId FROM Contact",
    );
    assert_eq!(
        contacts.columns(),
        ["Id", "AccountId", "Account.Name", "Owner.Name", "OwnerId", "Account.Owner.Name", "Account.OwnerId"]
    );
    let mut private = 0;
    for i in 0..contacts.len() {
        let row = contacts.row(i);
        match &row[1] {
            Some(account) => {
                assert_eq!(&row[2], &accounts[account]);
                let account_owner = row[6].clone().unwrap_or_default();
                assert_eq!(&row[5], &users[&account_owner]);
            }
            None => {
                private += 1;
                assert_eq!(row[2], None);
                assert_eq!(row[5], None);
            }
        }
        assert_eq!(&row[3], &users[row[4].as_deref().unwrap_or_default()]);
    }
    assert!(private > 0);
    // A null parent's field is null in WHERE too.
    assert_eq!(count(&data, "SELECT Id FROM Contact WHERE Account.Name = null"), private);
    let ada = rows(&data, "SELECT Id FROM Opportunity WHERE Owner.Name = 'ada lovelace'").len();
    let ada_expected = rows(&data, "SELECT Owner.Name FROM Opportunity")
        .iter()
        .filter(|r| r[0].as_deref() == Some("Ada Lovelace"))
        .count();
    assert_eq!(ada, ada_expected);
    let opportunities = rows(&data, "SELECT Name, Account.Name FROM Opportunity WHERE AccountId != null LIMIT 20");
    for row in opportunities {
        let (name, account) = (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default());
        assert!(name.starts_with(&account), "{name:?} is named after {account:?}");
    }
}

#[test]
fn ordering_nulls_and_limit() {
    let data = dataset(500, 0, 0);
    let by_name = rows(&data, "SELECT Name FROM Account ORDER BY Name");
    let names: Vec<String> = by_name.iter().map(|r| r[0].clone().unwrap_or_default().to_lowercase()).collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "case-insensitive ascending");
    let desc = rows(&data, "SELECT AnnualRevenue FROM Account ORDER BY AnnualRevenue DESC");
    let first_null = desc.iter().position(|r| r[0].is_none()).unwrap_or(desc.len());
    assert!(desc[first_null..].iter().all(|r| r[0].is_none()), "DESC puts nulls last");
    let values: Vec<f64> = desc[..first_null].iter().filter_map(|r| r[0].as_deref()?.parse().ok()).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]));
    let asc = rows(&data, "SELECT AnnualRevenue FROM Account ORDER BY AnnualRevenue");
    assert!(asc[0][0].is_none(), "ASC puts nulls first");
    let asc_last = rows(&data, "SELECT AnnualRevenue FROM Account ORDER BY AnnualRevenue ASC NULLS LAST");
    assert!(asc_last[0][0].is_some() && asc_last[asc_last.len() - 1][0].is_none());
    let multi = rows(&data, "SELECT Industry, Name FROM Account ORDER BY Industry DESC NULLS LAST, Name ASC");
    for pair in multi.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a[0] == b[0] {
            let (x, y) =
                (a[1].clone().unwrap_or_default().to_lowercase(), b[1].clone().unwrap_or_default().to_lowercase());
            assert!(x <= y);
        }
    }
    assert_eq!(count(&data, "SELECT Id FROM Account LIMIT 7"), 7);
    assert_eq!(count(&data, "SELECT Id FROM Account LIMIT 0"), 0);
    assert_eq!(count(&data, "SELECT Id FROM Account LIMIT 100000"), 500);
    let top = rows(&data, "SELECT Name FROM Account ORDER BY Name LIMIT 3");
    assert_eq!(top, by_name[..3]);
    // Without ORDER BY, rows come in creation (Id) order; ties keep it under ORDER BY too.
    let ids = rows(&data, "SELECT Id FROM Account");
    assert_eq!(ids.iter().map(|r| r[0].clone().unwrap_or_default()).collect::<Vec<_>>(), data.ids("Account"));
    let by_stamp = rows(&data, "SELECT LastModifiedDate, Id FROM Account ORDER BY LastModifiedDate");
    for pair in by_stamp.windows(2) {
        if pair[0][0] == pair[1][0] {
            assert!(pair[0][1] < pair[1][1], "ties in Id order");
        }
    }
}

#[test]
fn results_are_snapshots() {
    let mut data = dataset(300, 300, 0);
    let query = parse("SELECT Id, Name, AnnualRevenue, LastModifiedDate, Owner.Name FROM Account WHERE LastModifiedDate >= 2026-11-24T09:00:00Z ORDER BY LastModifiedDate").ok();
    let Some(query) = query else { panic!("parse") };
    let contacts = parse("SELECT Id, Account.AnnualRevenue, Account.LastModifiedDate FROM Contact").ok();
    let Some(contacts) = contacts else { panic!("parse") };
    let (Ok(before), Ok(contacts_before)) = (execute(&query, &data), execute(&contacts, &data)) else { panic!() };
    let render = |r: &ResultSet| (0..r.len()).map(|i| r.row(i)).collect::<Vec<_>>();
    let frozen = render(&before);
    let frozen_contacts = render(&contacts_before);
    data.apply_changes(200, 50, Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).single().unwrap_or_default());
    assert_eq!(render(&before), frozen);
    assert_eq!(render(&contacts_before), frozen_contacts);
    let Ok(after) = execute(&query, &data) else { panic!() };
    assert_ne!(render(&after), frozen);
    assert!(after.len() > before.len(), "inserted accounts match too");
    let json = serde_json::to_string(&before).unwrap_or_default();
    let restored: ResultSet = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(render(&restored), frozen);
    assert_eq!(restored.columns(), before.columns());
    assert!(serde_json::from_str::<ResultSet>(&json.replace("\"field\":", "\"field\":9")).is_err());
}

#[test]
fn validate_reports_schema_errors_without_running() {
    let data = dataset(10, 0, 0);
    let ok = parse(SEED_QUERY).and_then(|q| validate(&q, &data));
    assert_eq!(ok, Ok(()));
    let bad = parse("SELECT Nope FROM Account").and_then(|q| validate(&q, &data));
    assert_eq!(bad.map_err(|e| e.error_code), Err("INVALID_FIELD".to_owned()));
    assert_eq!(parse("select id from account").map(|q| q.object().to_owned()), Ok("account".to_owned()));
}

#[test]
fn a_row_looks_like_bulk_csv_cells() {
    let data = dataset(3, 0, 0);
    let result = run(&data, "SELECT Id, Name, AnnualRevenue, IsDeleted, CreatedDate, Owner.Name FROM Account LIMIT 1");
    let row = result.row(0);
    let id = row[0].clone().unwrap_or_default();
    assert!(id.starts_with("001") && id.len() == 18);
    assert_eq!(row[3].as_deref(), Some("false"));
    let created = row[4].clone().unwrap_or_default();
    assert_eq!(created.len(), 24);
    assert!(created.ends_with(".000Z"));
    assert!(row[5].is_some());
}
