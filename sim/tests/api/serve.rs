use std::sync::{Arc, Mutex};

use bulkflow_sim::cli::{SimCommand, serve_until};
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: SimCommand,
}

/// A writer the test can read while the server runs.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn serve_prints_ready_and_writes_private_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let creds_path = dir.path().join("not-yet").join("creds.json");
    let cli = Cli::parse_from([
        "sim",
        "serve",
        "--records",
        "Account=12",
        "--seed",
        "3",
        "--job-latency",
        "10ms",
        "--credentials-out",
        creds_path.to_str().unwrap(),
        "--password",
        "fixed-password-123456",
    ]);
    let SimCommand::Serve(args) = cli.command;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let out = Shared::default();
    let mut writer = out.clone();
    let server =
        tokio::spawn(async move { serve_until(*args, async { stop_rx.await.unwrap_or(()) }, &mut writer).await });

    let line = loop {
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        if let Some(line) = text.lines().next() {
            break line.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let fields: std::collections::HashMap<&str, &str> = line
        .strip_prefix("ready ")
        .expect("first line is the ready line")
        .split(' ')
        .filter_map(|f| f.split_once('='))
        .collect();
    let url = fields["url"].to_string();
    let bigquery = fields["bigquery"];
    assert!(bigquery.starts_with("127.0.0.1:") && !bigquery.ends_with(":0"), "the BigQuery fake's address: {line}");
    let pubsub = fields["pubsub"];
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(!url.ends_with(":0"), "an ephemeral port was chosen");
    assert!(pubsub.starts_with("127.0.0.1:") && !pubsub.ends_with(":0"), "{pubsub}");

    let creds: Value = serde_json::from_slice(&std::fs::read(&creds_path).unwrap()).unwrap();
    assert_eq!(creds["login_url"], url.as_str());
    assert_eq!(creds["password"], "fixed-password-123456");
    assert!(creds["client_secret"].as_str().unwrap().len() >= 16);
    assert_eq!(creds["pubsub_url"], format!("http://{pubsub}").as_str());
    let key_path = std::path::PathBuf::from(creds["private_key_path"].as_str().unwrap());
    assert!(key_path.is_absolute());
    assert_eq!(key_path.parent(), creds_path.parent());
    assert!(std::fs::read_to_string(&key_path).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [&creds_path, &key_path] {
            assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
        }
    }

    // The credentials work: password flow, then the record count the flags asked for.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{url}/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", creds["client_id"].as_str().unwrap()),
            ("client_secret", creds["client_secret"].as_str().unwrap()),
            ("username", creds["username"].as_str().unwrap()),
            ("password", creds["password"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stats: Value = http.get(format!("{url}/__sim/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["records"]["Account"], 12);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
