//! The writer against real stores: files on local disk and objects on a real S3-compatible server
//! (moto). The same checks run on both, as object_store's own integration suite does per backend.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use bulkflow_testkit::moto::Moto;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::json;

use super::config::{FileFormat, HivePartitionOptions, ObjectStoreConfig, ObjectStoreOperation, PartitionKey};
use super::processor::ObjectStoreProcessor;
use super::store::StoreFactory;
use super::upload::put;
use crate::env::EnvLookup;
use crate::event::{Event, EventData};
use crate::flow::template::Template;
use crate::runtime::processor::TaskError;
use crate::tls::Trust;

/// Every object under `prefix`, walking "directories" with delimiter listings (object_store's
/// plain `list` is a stream, and this saves a stream crate for one helper).
async fn list_all(store: &dyn ObjectStore, prefix: &ObjectPath) -> Vec<String> {
    let result = store.list_with_delimiter(Some(prefix)).await.unwrap();
    let mut out: Vec<String> = result.objects.iter().map(|o| o.location.to_string()).collect();
    for dir in result.common_prefixes {
        out.extend(Box::pin(list_all(store, &dir)).await);
    }
    out.sort();
    out
}

fn no_env() -> EnvLookup {
    Arc::new(|_| None)
}

fn config(path: &str, format: FileFormat, keys: Vec<PartitionKey>, options: &[(&str, &str)]) -> ObjectStoreConfig {
    ObjectStoreConfig {
        operation: ObjectStoreOperation::Write,
        credentials_path: None,
        path: Template::parse(path).unwrap(),
        format,
        hive_partition_options: Some(HivePartitionOptions {
            enabled: !keys.is_empty(),
            partition_keys: keys,
            field: None,
        }),
        client_options: options.iter().map(|(k, v)| (k.to_string(), Template::parse(v).unwrap())).collect(),
    }
}

fn batch_event(id: &str, rows: i64) -> Event {
    let ids: ArrayRef = Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("001{i:05}"))));
    let n: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
    let batch = RecordBatch::try_from_iter(vec![("Id", ids), ("N", n)]).unwrap();
    let mut e = Event::json(id, json!(null));
    e.data = EventData::Arrow(batch);
    e.meta.insert("run_id".into(), json!("q@2026-11-25T09:05:00Z"));
    e.meta.insert("object_name".into(), json!("account"));
    e
}

fn rows_in(parquet: bytes::Bytes) -> usize {
    ParquetRecordBatchReaderBuilder::try_new(parquet).unwrap().build().unwrap().map(|b| b.unwrap().num_rows()).sum()
}

/// Writes two batches, one of them twice, and checks the names, partitions and contents.
async fn writes_deterministic_partitioned_files(
    p: &ObjectStoreProcessor,
    list_root: &dyn Fn() -> (Arc<dyn ObjectStore>, ObjectPath),
) {
    let first = batch_event("750A-p0-b0", 3);
    let written = p.write(&first).await.unwrap();
    p.write(&first).await.unwrap(); // a redelivery overwrites its own file
    p.write(&batch_event("750A-p1-b0", 2)).await.unwrap();
    let (store, root) = list_root();
    let files = list_all(store.as_ref(), &root).await;
    let base = root.to_string();
    assert_eq!(
        files,
        vec![
            format!("{base}/account/EventDate=2026-11-25/EventHour=09/750A-p0-b0.parquet"),
            format!("{base}/account/EventDate=2026-11-25/EventHour=09/750A-p1-b0.parquet"),
        ]
    );
    assert_eq!(written.len(), 1);
    let bytes = store.get(&written[0]).await.unwrap().bytes().await.unwrap();
    assert_eq!(rows_in(bytes), 3);
}

#[tokio::test]
async fn local_disk_gets_hive_partitions_and_one_file_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = format!("{}/{{{{event.meta.object_name}}}}", dir.path().display());
    let p = ObjectStoreProcessor::new(
        "w",
        "write",
        &config(&path, FileFormat::Parquet, vec![PartitionKey::EventDate, PartitionKey::EventHour], &[]),
        None,
        no_env(),
        Trust::default(),
    );
    let root = ObjectPath::from_absolute_path(dir.path()).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
    writes_deterministic_partitioned_files(&p, &|| (store.clone(), root.clone())).await;
    // No temporary files are left beside the data.
    let day = dir.path().join("account/EventDate=2026-11-25/EventHour=09");
    assert_eq!(std::fs::read_dir(day).unwrap().count(), 2);
}

#[tokio::test]
async fn file_urls_csv_and_arrow_formats() {
    let dir = tempfile::tempdir().unwrap();
    for (format, ext) in [(FileFormat::Csv, "csv"), (FileFormat::Arrow, "arrow")] {
        let url = format!("file://{}/out", dir.path().display());
        let p = ObjectStoreProcessor::new(
            "w",
            "write",
            &config(&url, format, vec![PartitionKey::EventDate], &[]),
            None,
            no_env(),
            Trust::default(),
        );
        p.write(&batch_event("b/1", 2)).await.unwrap();
        let day = dir.path().join("out/EventDate=2026-11-25");
        let names: Vec<String> = std::fs::read_dir(&day)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(ext))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].starts_with("b_1-"), "{names:?}");
    }
    let csv = std::fs::read_dir(dir.path().join("out/EventDate=2026-11-25"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .unwrap();
    assert_eq!(std::fs::read_to_string(csv).unwrap(), "Id,N\n00100000,0\n00100001,1\n");
}

#[tokio::test]
async fn an_event_without_a_run_id_is_refused_rather_than_partitioned_by_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let p = ObjectStoreProcessor::new(
        "w",
        "write",
        &config(&dir.path().display().to_string(), FileFormat::Parquet, vec![PartitionKey::EventDate], &[]),
        None,
        no_env(),
        Trust::default(),
    );
    let mut e = batch_event("b", 1);
    e.meta.clear();
    let err = p.write(&e).await.unwrap_err();
    assert!(matches!(&err, TaskError::Fatal(m) if m.contains("meta.run_id")), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn aws_credentials(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("aws.json");
    std::fs::write(&path, r#"{"access_key_id": "AKIDTEST", "secret_access_key": "very-secret-value"}"#).unwrap();
    path
}

#[tokio::test]
async fn s3_gets_the_same_files_and_large_files_go_up_in_parts() {
    let moto = Moto::start();
    moto.create_bucket("exports");
    let dir = tempfile::tempdir().unwrap();
    let creds = aws_credentials(dir.path());
    // The endpoint comes from the environment, as a flow shared by a laptop and the cloud has it;
    // an option that renders empty (an unset variable) is left unset.
    let endpoint = moto.endpoint();
    let env: EnvLookup = Arc::new(move |k| (k == "S3_ENDPOINT").then(|| endpoint.clone()));
    let options =
        [("endpoint", "{{env.S3_ENDPOINT}}"), ("aws_region", "us-east-1"), ("aws_session_token", "{{env.UNSET}}")];
    let cfg = config(
        "s3://exports/salesforce/{{event.meta.object_name}}",
        FileFormat::Parquet,
        vec![PartitionKey::EventDate, PartitionKey::EventHour],
        &options,
    );
    let p = ObjectStoreProcessor::new("w", "write", &cfg, Some(creds.clone()), env.clone(), Trust::default());
    let factory = StoreFactory::new(Some(creds.clone()), cfg.client_options.clone(), env);
    let target = factory.target("s3://exports/salesforce").unwrap();
    writes_deterministic_partitioned_files(&p, &|| (target.store.clone(), target.prefix.clone())).await;

    // 11 MiB with 5 MiB parts: three parts, and S3 marks a multipart object's ETag with its count.
    let big: Vec<u8> = (0..11 * 1024 * 1024).map(|i: usize| (i % 251) as u8).collect();
    let path = ObjectPath::from("big/file.bin");
    put(target.store.as_ref(), &path, big.clone(), 5 * 1024 * 1024).await.unwrap();
    let meta = target.store.head(&path).await.unwrap();
    assert!(meta.e_tag.as_deref().is_some_and(|t| t.trim_matches('"').ends_with("-3")), "{:?}", meta.e_tag);
    assert_eq!(target.store.get(&path).await.unwrap().bytes().await.unwrap().as_ref(), big.as_slice());
}

#[tokio::test]
async fn bad_options_and_credentials_are_named_and_secrets_stay_out_of_errors() {
    let dir = tempfile::tempdir().unwrap();
    let creds = aws_credentials(dir.path());
    let options: BTreeMap<String, Template> = [("endpont".to_string(), Template::parse("http://x").unwrap())].into();
    let err = StoreFactory::new(Some(creds.clone()), options, no_env()).target("s3://b/p").unwrap_err().to_string();
    assert!(err.contains("client_options.endpont") && !err.contains("very-secret-value"), "{err}");

    std::fs::write(&creds, r#"{"access_key_id": "AKIDTEST", "secret_access_key": ["very-secret-value"]}"#).unwrap();
    let err = StoreFactory::new(Some(creds), BTreeMap::new(), no_env()).target("s3://b/p").unwrap_err().to_string();
    assert!(err.contains("aws.json") && !err.contains("very-secret-value"), "{err}");

    let err = StoreFactory::new(None, BTreeMap::new(), no_env()).target("ftp://host/x").unwrap_err().to_string();
    assert!(err.contains("`ftp`"), "{err}");
    let err =
        StoreFactory::new(None, BTreeMap::new(), no_env()).target("s3://key:secret@bucket/x").unwrap_err().to_string();
    assert!(err.contains("credentials_path"), "{err}");
    assert!(matches!(
        StoreFactory::new(None, BTreeMap::new(), no_env()).target(""),
        Err(super::store::StoreError::Empty)
    ));
}

#[tokio::test]
async fn gcs_and_azure_clients_build_from_their_credentials_files() {
    let dir = tempfile::tempdir().unwrap();
    let az = dir.path().join("az.json");
    std::fs::write(&az, r#"{"account_name": "acct", "account_key": "a2V5"}"#).unwrap();
    StoreFactory::new(Some(az), BTreeMap::new(), no_env()).target("az://container/x").unwrap();
    // With STORAGE_EMULATOR_HOST the GCS client needs no real service account.
    let env: EnvLookup = Arc::new(|k| (k == "STORAGE_EMULATOR_HOST").then(|| "127.0.0.1:4443".to_string()));
    StoreFactory::new(None, BTreeMap::new(), env).target("gs://bucket/x").unwrap();
}

/// An S3-compatible server on HTTPS with a certificate of a CA made for the test: the task
/// trusting that CA (the engine's `tls_ca_file`) writes its files; one that does not is refused by
/// its own certificate check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_over_https_trusts_the_engines_ca_file() {
    let pki = bulkflow_testkit::tls::Pki::new();
    let (cert, key) = (pki.server_cert(), pki.server_key());
    let moto = tokio::task::spawn_blocking(move || Moto::start_tls(&cert, &key)).await.unwrap();
    let trust = Trust::load(Some(&pki.ca())).unwrap();
    let endpoint = moto.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let http = trust.reqwest(reqwest::Client::builder()).build().unwrap();
    let made = http.put(format!("{endpoint}/exports")).send().await.unwrap();
    assert!(made.status().is_success(), "creating the bucket: {}", made.status());

    let dir = tempfile::tempdir().unwrap();
    let creds = aws_credentials(dir.path());
    let options = [("endpoint", endpoint.as_str()), ("aws_region", "us-east-1")];
    let cfg = config("s3://exports/salesforce", FileFormat::Parquet, vec![], &options);
    let path = ObjectPath::from("salesforce/probe.bin");

    let trusting = StoreFactory::new(Some(creds.clone()), cfg.client_options.clone(), no_env()).with_trust(trust);
    let target = trusting.target("s3://exports/salesforce").unwrap();
    put(target.store.as_ref(), &path, b"over TLS".to_vec(), 5 * 1024 * 1024).await.unwrap();
    assert_eq!(target.store.get(&path).await.unwrap().bytes().await.unwrap().as_ref(), b"over TLS");

    let untrusting = StoreFactory::new(Some(creds), cfg.client_options.clone(), no_env());
    let target = untrusting.target("s3://exports/salesforce").unwrap();
    let err = target.store.head(&path).await.unwrap_err();
    let text = format!("{err} {err:?}").to_lowercase();
    assert!(text.contains("certificate"), "{err}");
}

/// The one client option that turns certificate checks off is said when the store is built.
#[test]
fn allow_invalid_certificates_is_said_at_start() {
    let options =
        [("endpoint", "https://127.0.0.1:9"), ("aws_region", "us-east-1"), ("allow_invalid_certificates", "true")];
    let cfg = config("s3://b/p", FileFormat::Parquet, vec![], &options);
    let said = crate::credentials::permissions::tests::warnings_during(|| {
        StoreFactory::new(None, cfg.client_options.clone(), no_env()).target("s3://b/p").unwrap();
    });
    assert!(said.contains("verification off") && said.contains("allow_invalid_certificates"), "{said}");
    let quiet =
        [("endpoint", "https://127.0.0.1:9"), ("aws_region", "us-east-1"), ("allow_invalid_certificates", "false")];
    let cfg = config("s3://b/p", FileFormat::Parquet, vec![], &quiet);
    let said = crate::credentials::permissions::tests::warnings_during(|| {
        StoreFactory::new(None, cfg.client_options.clone(), no_env()).target("s3://b/p").unwrap();
    });
    assert!(said.is_empty(), "{said}");
}
