//! `bulkflow export` as users run it: a separate simulator process, the binary, its exit status
//! and summary line, and the files it leaves, compared with what the org holds. Local folders and
//! a real S3-compatible server (moto); a SIGKILL mid-export then a second invocation; casts by a
//! schema; bad flags and bad SOQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use bulkflow_testkit::moto::Moto;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

#[path = "support/every_file.rs"]
mod every_file;
#[path = "support/sim_process.rs"]
mod sim_process;

use every_file::every_file;
use sim_process::SimProcess;

/// The seed's Account columns.
const FIELDS: &str = "Id,Name,Type,Industry,AnnualRevenue,CreatedDate,LastModifiedDate";

struct Sim {
    process: SimProcess,
    creds: PathBuf,
}

impl Sim {
    fn start(dir: &Path, records: usize, page: usize) -> Sim {
        let records = format!("Account={records}");
        let page = page.to_string();
        let process =
            SimProcess::start(dir, &["--records", &records, "--max-page-records", &page, "--job-latency", "200ms"]);
        Sim { process, creds: dir.join("creds/etc/sfdc/credentials.json") }
    }

    fn call(&self, method: &str, path: &str, body: String) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let url = format!("{}{path}", self.process.url);
            let client = reqwest::Client::new();
            let req = if method == "GET" { client.get(url) } else { client.post(url).body(body) };
            let resp = req.send().await.unwrap();
            assert!(resp.status().is_success(), "{method} {path}: {}", resp.status());
            resp.json().await.unwrap()
        })
    }

    /// Rows of a SOQL query on the org, by Id, each value as text (`None` for null or empty).
    fn rows(&self, soql: &str, all: bool) -> BTreeMap<String, Vec<Option<String>>> {
        let path = if all { "/__sim/query?all=true" } else { "/__sim/query" };
        let rows = self.call("POST", path, soql.to_string());
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let values: Vec<Option<String>> = r
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
                    .collect();
                (values[0].clone().unwrap(), values)
            })
            .collect()
    }

    fn jobs_created(&self) -> u64 {
        self.call("GET", "/__sim/stats", String::new())["jobs_created"]["Account"].as_u64().unwrap_or(0)
    }

    fn export(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkflow"));
        cmd.arg("export").arg("--credentials").arg(&self.creds).args(args).env("RUST_LOG", "info");
        cmd
    }
}

/// Runs an export; returns its summary line's numbers after checking the line's shape.
fn summary(output: &Output) -> (u64, u64) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "export failed ({}): {}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let fields: Vec<(&str, &str)> = line.split(' ').filter_map(|kv| kv.split_once('=')).collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["rows", "files", "seconds"], "the summary line: {line}");
    assert!(fields[2].1.parse::<f64>().is_ok(), "seconds is a number: {line}");
    (fields[0].1.parse().unwrap(), fields[1].1.parse().unwrap())
}

/// Every row of every `part-*.parquet` in `dir`, in file order, as text.
fn parquet_rows(dir: &Path) -> Vec<Vec<Option<String>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files.iter().flat_map(|f| text_rows(&read_parquet(&std::fs::read(f).unwrap()))).collect()
}

fn read_parquet(bytes: &[u8]) -> Vec<RecordBatch> {
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes)).unwrap().build().unwrap();
    reader.map(Result::unwrap).collect()
}

fn text_rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        let c = c.as_string::<i32>();
                        (c.is_valid(i) && !c.value(i).is_empty()).then(|| c.value(i).to_string())
                    })
                    .collect(),
            );
        }
    }
    rows
}

fn by_id(rows: Vec<Vec<Option<String>>>) -> BTreeMap<String, Vec<Option<String>>> {
    let n = rows.len();
    let map: BTreeMap<_, _> = rows.into_iter().map(|r| (r[0].clone().unwrap(), r)).collect();
    assert_eq!(map.len(), n, "no record is written twice");
    map
}

fn part_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("part-"))
        .collect();
    names.sort();
    names
}

fn select() -> String {
    format!("SELECT {} FROM Account", FIELDS.replace(',', ", "))
}

#[test]
fn an_export_to_local_parquet_holds_every_record_of_the_org_once_and_a_second_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), 25_000, 7_000);
    let out = dir.path().join("out");
    let args =
        ["--object", "Account", "--fields", FIELDS, "--max-rows-per-file", "10000", "--out", out.to_str().unwrap()];

    let (rows, files) = summary(&sim.export(&args).output().unwrap());
    assert_eq!((rows, files), (25_000, 3));
    assert_eq!(part_files(&out), ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]);
    assert_eq!(
        by_id(parquet_rows(&out)),
        sim.rows(&select(), false),
        "the files hold the org's records, value for value"
    );

    // Finished: nothing to do, nothing touched.
    let modified = std::fs::metadata(out.join("part-00000.parquet")).unwrap().modified().unwrap();
    assert_eq!(summary(&sim.export(&args).output().unwrap()), (0, 0));
    assert_eq!(std::fs::metadata(out.join("part-00000.parquet")).unwrap().modified().unwrap(), modified);
    assert_eq!(sim.jobs_created(), 1, "a finished export creates no second job");

    // --force starts over with a new job.
    let forced: Vec<&str> = args.iter().copied().chain(["--force"]).collect();
    assert_eq!(summary(&sim.export(&forced).output().unwrap()), (25_000, 3));
    assert_eq!(sim.jobs_created(), 2);
    assert_eq!(by_id(parquet_rows(&out)).len(), 25_000);
}

#[test]
fn since_filters_on_systemmodstamp_and_query_all_includes_deleted_records() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), 4_000, 50_000);
    let deleted = sim.call("POST", "/__sim/delete", r#"{"object": "Account", "count": 25}"#.into());
    let deleted: Vec<String> =
        deleted["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(deleted.len(), 25);

    // Records changed in the last 6 of the data's 23 hours.
    let since = (chrono::Utc::now() - chrono::Duration::hours(6)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let out = dir.path().join("since");
    let (rows, _) = summary(
        &sim.export(&[
            "--query",
            "SELECT Id, SystemModstamp FROM Account",
            "--since",
            &since,
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap(),
    );
    let expected = sim.rows(&format!("SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp >= {since}"), false);
    assert!(rows > 0 && (rows as usize) < 4_000, "--since keeps some records, not all: {rows}");
    assert_eq!(by_id(parquet_rows(&out)), expected);

    // queryAll: the live records and the 25 in the Recycle Bin, flagged.
    let out = dir.path().join("all");
    let (rows, _) = summary(
        &sim.export(&[
            "--object",
            "Account",
            "--fields",
            "Id,IsDeleted",
            "--query-all",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap(),
    );
    assert_eq!(rows, 4_000);
    let flagged: Vec<String> = parquet_rows(&out)
        .into_iter()
        .filter(|r| r[1].as_deref() == Some("true"))
        .map(|r| r[0].clone().unwrap())
        .collect();
    let mut expected = deleted.clone();
    expected.sort();
    let mut flagged = flagged;
    flagged.sort();
    assert_eq!(flagged, expected);
    let out = dir.path().join("live");
    let (rows, _) = summary(
        &sim.export(&["--object", "Account", "--fields", "Id", "--out", out.to_str().unwrap()]).output().unwrap(),
    );
    assert_eq!(rows, 4_000 - 25, "without --query-all the deleted records are not exported");
}

#[test]
fn without_fields_every_selectable_field_of_the_describe_is_exported_and_csv_and_arrow_are_written_too() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), 1_500, 50_000);
    let out = dir.path().join("csv");
    let (rows, files) = summary(
        &sim.export(&[
            "--object",
            "Account",
            "--format",
            "csv",
            "--max-rows-per-file",
            "1000",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap(),
    );
    assert_eq!((rows, files), (1_500, 2));
    let text = std::fs::read_to_string(out.join("part-00000.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    assert!(header.starts_with(&["Id", "Name"]) && header.contains(&"SystemModstamp"), "{header:?}");
    assert!(!header.contains(&"BillingAddress"), "compound fields cannot be selected: {header:?}");

    let out = dir.path().join("arrow");
    summary(
        &sim.export(&["--object", "Account", "--fields", "Id", "--format", "arrow", "--out", out.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let file = std::fs::File::open(out.join("part-00000.arrow")).unwrap();
    let batches: Vec<RecordBatch> =
        arrow::ipc::reader::FileReader::try_new(file, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1_500);
}

#[test]
fn schema_casts_the_columns_and_a_value_it_cannot_cast_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), 2_000, 50_000);
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("resources/salesforce/schema_account.json");
    let out = dir.path().join("typed");
    let args = [
        "--object",
        "Account",
        "--fields",
        FIELDS,
        "--schema",
        schema.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    assert_eq!(summary(&sim.export(&args).output().unwrap()), (2_000, 1));
    let batches = read_parquet(&std::fs::read(out.join("part-00000.parquet")).unwrap());
    let schema = batches[0].schema();
    assert_eq!(schema.field_with_name("Id").unwrap().data_type(), &DataType::Utf8);
    assert!(matches!(
        schema.field_with_name("AnnualRevenue").unwrap().data_type(),
        DataType::Decimal128(..) | DataType::Float64
    ));
    assert_eq!(
        schema.field_with_name("LastModifiedDate").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2_000);

    // A schema that says Name is a number: exit 2, the flag, the record and the column named.
    let bad = dir.path().join("bad_schema.json");
    std::fs::write(&bad, r#"{"fields": [{"name": "Id", "type": "string"}, {"name": "Name", "type": "int64"}]}"#)
        .unwrap();
    let out = dir.path().join("bad");
    let output = sim
        .export(&[
            "--object",
            "Account",
            "--fields",
            "Id,Name",
            "--schema",
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--schema") && stderr.contains("`Name`") && stderr.contains("record Id `001"), "{stderr}");
}

#[test]
fn bad_flags_and_bad_soql_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), 100, 50_000);
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let missing_schema = dir.path().join("nope.json");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--query", "SELECT Id, Nme FROM Account", "--out", out], "No such column 'Nme'"),
        (vec!["--query", "SELEC Id FROM Account", "--out", out], "SELEC"),
        (vec!["--object", "Acount", "--out", out], "--object: Salesforce knows no object `Acount`"),
        (vec!["--object", "Account", "--fields", "Id;Name", "--out", out], "--fields: `Id;Name`"),
        (vec!["--object", "Account", "--since", "yesterday", "--out", out], "--since: `yesterday`"),
        (vec!["--object", "Account", "--max-rows-per-file", "0", "--out", out], "--max-rows-per-file"),
        (vec!["--object", "Account", "--schema", missing_schema.to_str().unwrap(), "--out", out], "--schema"),
        (vec!["--object", "Account", "--out", "ftp://host/x"], "--out: `ftp://host/x`"),
        (vec!["--object", "Account", "--format", "xml", "--out", out], "--format"),
        (vec!["--query", "SELECT Id FROM Account", "--fields", "Id", "--out", out], "--fields"),
        (vec!["--out", out], "--query"),
    ];
    for (args, named) in cases {
        let output = sim.export(&args).stdout(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} names `{named}`: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: no summary line on failure");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .args(["export", "--credentials", "/nonexistent/creds.json", "--object", "Account", "--out", out])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--credentials") && stderr.contains("/nonexistent/creds.json"), "{stderr}");
    let stats = sim.call("GET", "/__sim/stats", String::new());
    assert_eq!(stats["requests"]["job_create"], 2, "only the two refused queries reached the job endpoint");
    assert_eq!(sim.jobs_created(), 0);
}

#[test]
fn a_sigkill_mid_export_then_a_second_run_yields_every_record_once_from_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), 30_000, 1_500);
    // Slow pages, so the kill lands mid-export.
    sim.call("POST", "/__sim/faults", r#"{"latency_ms": 150, "endpoints": ["job_results"]}"#.into());
    let out = dir.path().join("out");
    let args =
        ["--object", "Account", "--fields", FIELDS, "--max-rows-per-file", "2500", "--out", out.to_str().unwrap()];

    let mut child = sim.export(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("part-00003.parquet").exists() {
        assert!(Instant::now() < deadline, "the export wrote no fourth file");
        assert!(child.try_wait().unwrap().is_none(), "the export ended before it was killed");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let checkpoint: Value = serde_json::from_slice(&std::fs::read(out.join("_bulkflow_export.json")).unwrap()).unwrap();
    assert_eq!(checkpoint["done"], false);
    let done_files = checkpoint["files"].as_u64().unwrap();
    // The fourth file may be in place with the checkpoint not yet moved past it: the second run
    // writes it again under the same name.
    assert!((3..12).contains(&done_files), "killed mid-export: {checkpoint}");
    let job = checkpoint["job_id"].as_str().unwrap().to_string();

    sim.call("POST", "/__sim/faults", "{}".into());
    let (rows, files) = summary(&sim.export(&args).output().unwrap());
    assert_eq!(files, 12 - done_files, "the second run writes the files the first did not finish");
    assert_eq!(rows, 30_000 - checkpoint["rows"].as_u64().unwrap());
    let checkpoint: Value = serde_json::from_slice(&std::fs::read(out.join("_bulkflow_export.json")).unwrap()).unwrap();
    assert_eq!(checkpoint["job_id"], job.as_str(), "the same Bulk job");
    assert_eq!(sim.jobs_created(), 1);
    assert_eq!(part_files(&out).len(), 12);
    assert_eq!(by_id(parquet_rows(&out)), sim.rows(&select(), false), "every record once");
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no half-written file is left: {leftovers:?}");
}

#[test]
fn an_export_to_an_s3_compatible_server_equals_the_orgs_records_and_resumes_there() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), 12_000, 4_000);
    let moto = Moto::start();
    moto.create_bucket("exports");
    let s3 = |cmd: &mut Command| {
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", moto.endpoint());
    };
    let args = [
        "--object",
        "Account",
        "--fields",
        FIELDS,
        "--max-rows-per-file",
        "5000",
        "--out",
        "s3://exports/accounts/daily",
    ];
    let mut cmd = sim.export(&args);
    s3(&mut cmd);
    assert_eq!(summary(&cmd.output().unwrap()), (12_000, 3));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let objects: BTreeMap<String, Vec<u8>> = rt.block_on(async {
        use futures_util::TryStreamExt;
        use object_store::{ObjectStore, ObjectStoreExt};
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("exports")
            .with_endpoint(moto.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap();
        let prefix = object_store::path::Path::from("accounts/daily");
        let listed: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
        let mut out = BTreeMap::new();
        for meta in listed {
            let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
            out.insert(meta.location.to_string(), bytes.to_vec());
        }
        out
    });
    let names: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "accounts/daily/_bulkflow_export.json",
            "accounts/daily/part-00000.parquet",
            "accounts/daily/part-00001.parquet",
            "accounts/daily/part-00002.parquet"
        ]
    );
    let rows: Vec<_> = objects
        .iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .flat_map(|(_, b)| text_rows(&read_parquet(b)))
        .collect();
    assert_eq!(by_id(rows), sim.rows(&select(), false));

    // The checkpoint is in the bucket: a second run there writes nothing.
    let mut cmd = sim.export(&args);
    s3(&mut cmd);
    assert_eq!(summary(&cmd.output().unwrap()), (0, 0));
    assert_eq!(sim.jobs_created(), 1);
}

#[test]
fn at_trace_level_the_password_flow_leaves_no_secret_in_the_output_or_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, password) = ("SeCrEtConsumerSecret4711", "PaSsWoRdOfTheUser0815");
    let process = SimProcess::start(
        dir.path(),
        &["--records", "Account=300", "--job-latency", "200ms", "--client-secret", secret, "--password", password],
    );
    // The password flow: the same file without the JWT key.
    let jwt_creds = dir.path().join("creds/etc/sfdc/credentials.json");
    let mut creds: Value = serde_json::from_str(&std::fs::read_to_string(&jwt_creds).unwrap()).unwrap();
    creds.as_object_mut().unwrap().remove("private_key_path");
    let password_creds = dir.path().join("password.json");
    std::fs::write(&password_creds, creds.to_string()).unwrap();
    std::fs::set_permissions(&password_creds, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_bulkflow"))
        .args(["export", "--object", "Account", "--fields", FIELDS, "--out"])
        .arg(&out)
        .arg("--credentials")
        .arg(&password_creds)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(summary(&output).0, 300);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.contains(" TRACE "), "trace logging is on:\n{stderr}");
    // Left readable by others: one warning, naming the file on its line.
    let warning = format!("credentials file {} is open to group or others (mode 644)", password_creds.display());
    assert_eq!(stderr.lines().filter(|l| l.contains(" WARN ") && l.contains(&warning)).count(), 1, "{stderr}");
    let logged = [output.stdout, output.stderr].concat();
    // Access tokens are the org id's first 15 characters, `!AQ`, then 94 more.
    let token_marker = "!AQ";
    let mut places: Vec<(String, Vec<u8>)> = vec![("stdout and stderr".into(), logged)];
    places.extend(every_file(&out).into_iter().map(|f| (f.display().to_string(), std::fs::read(&f).unwrap())));
    for (place, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for needle in [secret, password, token_marker] {
            assert!(!text.contains(needle), "{needle} found in {place}");
        }
    }
    drop(process);
}

/// `bulkflow sim serve --tls-cert --tls-key` serves HTTPS with a certificate of a CA made for the
/// test; `bulkflow export --tls-ca-file` trusts that CA and exports, without it the export is
/// refused (exit 1) with the certificate named and the flag to give, and a CA file that is not
/// there is bad input (exit 2).
#[test]
fn an_export_over_https_trusts_the_ca_file_it_is_given_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let pki = bulkflow_testkit::tls::Pki::new();
    let (cert, key) = (pki.server_cert(), pki.server_key());
    let process = SimProcess::start(
        dir.path(),
        &[
            "--records",
            "Account=1500",
            "--job-latency",
            "200ms",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(process.url.starts_with("https://127.0.0.1:"), "{}", process.url);
    let sim = Sim { process, creds: dir.path().join("creds/etc/sfdc/credentials.json") };
    let ca = pki.ca();
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    let trusted = out("trusted");
    let args = ["--object", "Account", "--fields", FIELDS, "--out", &trusted, "--tls-ca-file", ca.to_str().unwrap()];
    let (rows, _) = summary(&sim.export(&args).env_remove("BULKFLOW_TLS_CA_FILE").output().unwrap());
    assert_eq!(rows, 1_500);
    assert_eq!(parquet_rows(Path::new(&trusted)).len(), 1_500);

    let untrusted = out("untrusted");
    let refused = sim
        .export(&["--object", "Account", "--fields", FIELDS, "--out", &untrusted])
        .env_remove("BULKFLOW_TLS_CA_FILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid peer certificate: UnknownIssuer") && stderr.contains("--tls-ca-file"), "{stderr}");

    let missing = sim
        .export(&["--object", "Account", "--out", &untrusted, "--tls-ca-file", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tls-ca-file") && stderr.contains("/nonexistent/ca.pem"), "{stderr}");
}
