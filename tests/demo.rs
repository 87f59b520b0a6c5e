//! `bulkflow demo --records 2000 --until-idle` on a fresh directory: every object's first export
//! lands in the lake and the warehouse, `DIR/warehouse.url` names the warehouse, and `--stop`
//! stops it.

use std::path::Path;
use std::process::Command;

#[path = "support/lake.rs"]
mod lake;

use lake::{lake_contents, lake_ids};

const RECORDS: usize = 2000;

fn demo(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .arg("demo")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("NATS_URL")
        .env_remove("BULKFLOW_CONFIG")
        .output()
        .unwrap()
}

fn count(url: &str, table: &str) -> Result<i64, tokio_postgres::Error> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let row = client.query_one(&format!(r#"SELECT count(DISTINCT "Id") FROM salesforce.{table}"#), &[]).await?;
        Ok(row.get(0))
    })
}

#[test]
fn the_demo_exports_every_object_to_the_lake_and_the_warehouse_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let out = demo(&d, &["--records", &RECORDS.to_string(), "--until-idle"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(d.join("bulkflow.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}\nlog tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        &log[log.len().saturating_sub(4000)..]
    );
    assert!(stdout.contains("Parquet files"), "{stdout}");

    let url = std::fs::read_to_string(d.join("warehouse.url")).unwrap().trim().to_string();
    assert!(url.starts_with("postgres://"), "{url}");
    for object in ["account", "contact", "opportunity"] {
        // The demo's org deletes a few records a minute: the warehouse follows them.
        let contents = lake_contents(&d.join("lake/salesforce").join(object));
        let lake: std::collections::BTreeSet<&String> = contents.ids.difference(&contents.deleted).collect();
        let all = lake_ids(&d.join("lake/salesforce").join(object));
        assert!(all.len() >= RECORDS, "{object}: {} Ids in the lake", all.len());
        assert!(lake.len() >= RECORDS - 20, "{object}: {} live Ids in the lake", lake.len());
        let rows = count(&url, object).unwrap();
        assert_eq!(rows as usize, lake.len(), "{object}: one warehouse row per live Id the lake holds");
    }

    let out = demo(&d, &["--stop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(count(&url, "account").is_err(), "the warehouse is stopped");
}
