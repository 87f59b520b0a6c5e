//! Credentials files: the three clouds' (as the seed's table names them) and any JSON a writer
//! decodes (PostgreSQL's URL, BigQuery's service account). Values are secrets: nothing here prints
//! them, and decoding errors report where the file is wrong, never what it says.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `{"access_key_id": "...", "secret_access_key": "...", "session_token": "...", "region": "..."}`;
/// the `aws_`-prefixed spellings of the AWS CLI are accepted too. The region may instead come from
/// `client_options.aws_region`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsCredentials {
    #[serde(alias = "aws_access_key_id")]
    pub access_key_id: String,
    #[serde(alias = "aws_secret_access_key")]
    pub secret_access_key: String,
    #[serde(default, alias = "aws_session_token")]
    pub session_token: Option<String>,
    #[serde(default, alias = "aws_region")]
    pub region: Option<String>,
}

/// `{"account_name": "...", "account_key": "..."}` (a storage account and one of its access keys).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureCredentials {
    #[serde(alias = "storage_account_name", alias = "account")]
    pub account_name: String,
    #[serde(alias = "access_key", alias = "storage_account_key")]
    pub account_key: String,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials").field("region", &self.region).finish_non_exhaustive()
    }
}

impl fmt::Debug for AzureCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCredentials").field("account_name", &self.account_name).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read credentials file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file `{}` is not {expected} ({problem} at line {line}, column {column})", path.display())]
    Decode { path: PathBuf, expected: &'static str, problem: &'static str, line: usize, column: usize },
}

/// The file's text (warning when others can read it), for the GCP service account key the store
/// client parses itself.
pub fn read(path: &Path) -> Result<String, CredentialsError> {
    super::permissions::warn_if_loose(path);
    std::fs::read_to_string(path).map_err(|source| CredentialsError::Read { path: path.to_path_buf(), source })
}

/// Decodes `text` read from `path`. A serde message can quote the offending value (a secret), so
/// only its category and position are kept.
pub fn decode<T: for<'de> Deserialize<'de>>(
    path: &Path,
    text: &str,
    expected: &'static str,
) -> Result<T, CredentialsError> {
    serde_json::from_str(text).map_err(|e| CredentialsError::Decode {
        path: path.to_path_buf(),
        expected,
        problem: match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "invalid JSON",
            serde_json::error::Category::Data => "missing, unknown or mistyped key",
            serde_json::error::Category::Io => "read error",
        },
        line: e.line(),
        column: e.column(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_debug_output_never_show_a_secret() {
        let path = Path::new("/etc/aws/credentials.json");
        let text = r#"{"access_key_id": "AKIA", "secret_access_key": 12345678, "region": "eu-west-1"}"#;
        let err = decode::<AwsCredentials>(path, text, "an AWS access key JSON").unwrap_err().to_string();
        assert!(err.contains("/etc/aws/credentials.json") && err.contains("line 1"), "{err}");
        assert!(!err.contains("12345678") && !err.contains("AKIA"), "{err}");

        let ok = r#"{"aws_access_key_id": "AKIA", "aws_secret_access_key": "s3cr3t"}"#;
        let creds: AwsCredentials = decode(path, ok, "an AWS access key JSON").unwrap();
        assert_eq!(creds.secret_access_key, "s3cr3t");
        assert!(!format!("{creds:?}").contains("s3cr3t"));
        let az: AzureCredentials =
            decode(path, r#"{"account_name": "acct", "account_key": "k3y"}"#, "an Azure storage account JSON").unwrap();
        assert!(!format!("{az:?}").contains("k3y"));
    }
}
