//! A credentials file that group or others can read is a secret shared with them. Each one draws
//! a warning, once per process, that names the file in the message itself: the name is then on
//! the same line in every log format, and a start with a dozen flows naming one file warns once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Warns (once per file) when `file` is readable or writable by group or others.
#[cfg(unix)]
pub fn warn_if_loose(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(file) else { return };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 || !first_time(file) {
        return;
    }
    tracing::warn!(
        file = %file.display(),
        mode = format!("{mode:o}"),
        "credentials file {} is open to group or others (mode {mode:o}); chmod 600 it",
        file.display()
    );
}

#[cfg(not(unix))]
pub fn warn_if_loose(_file: &Path) {}

fn first_time(file: &Path) -> bool {
    static WARNED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    WARNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(file.to_path_buf())
}

#[cfg(all(test, unix))]
pub(crate) mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::credentials::CredentialsRoot;

    /// What `f` logged at warn level and above, on this thread (other modules' tests use it too).
    pub(crate) fn warnings_during(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    fn file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn every_kind_of_credentials_file_open_to_others_warns_once_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = CredentialsRoot::default();
        let salesforce = file(
            dir.path(),
            "sf.json",
            r#"{"client_id": "c", "client_secret": "s", "login_url": "https://login.salesforce.com"}"#,
            0o640,
        );
        let nats = file(dir.path(), "nats.json", r#"{"token": "t"}"#, 0o644);
        let gcp = file(dir.path(), "gcp.json", "{}", 0o604);
        let postgres = file(dir.path(), "pg.json", r#"{"url": "postgres://u:p@h/db"}"#, 0o660);
        let tight = file(dir.path(), "tight.json", r#"{"url": "postgres://u:p@h/db"}"#, 0o600);
        let log = warnings_during(|| {
            for _ in 0..2 {
                crate::salesforce::credentials::SalesforceCredentials::load(&salesforce, &root).unwrap();
                crate::bus::nats::credentials::NatsCredentials::load(&root, nats.to_str().unwrap()).unwrap();
                crate::credentials::files::read(&gcp).unwrap();
                crate::credentials::files::read(&postgres).unwrap();
                crate::credentials::files::read(&tight).unwrap();
            }
        });
        for (path, mode) in [(&salesforce, "640"), (&nats, "644"), (&gcp, "604"), (&postgres, "660")] {
            let line =
                format!("credentials file {} is open to group or others (mode {mode}); chmod 600 it", path.display());
            assert_eq!(log.lines().filter(|l| l.contains(&line)).count(), 1, "{line} once in:\n{log}");
        }
        assert!(!log.contains("tight.json"), "{log}");
        assert_eq!(log.lines().count(), 4, "{log}");
    }
}
