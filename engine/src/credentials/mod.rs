//! Where credentials files are read from. The seed's flows name files under `/etc/...`; a
//! credentials root maps every absolute path P to `ROOT/P`, so the same flows run unchanged in
//! tests, the demo and unprivileged installs. `files` reads and decodes them.

pub mod files;
pub mod permissions;

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialsRoot {
    root: Option<PathBuf>,
}

impl CredentialsRoot {
    pub fn new(root: Option<PathBuf>) -> Self {
        Self { root }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Where a flow's `credentials_path` is actually read from. A path already inside the root
    /// (a tool that wrote absolute paths into a credentials file there) is left as it is.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) if path.is_absolute() && !path.starts_with(root) => {
                let rel: PathBuf = path.components().filter(|c| matches!(c, Component::Normal(_))).collect();
                root.join(rel)
            }
            _ => path.to_path_buf(),
        }
    }

    /// A path written inside a credentials file (a private key, a NATS creds file): relative to
    /// that file's directory when relative, and mapped under the root like any absolute path.
    pub fn resolve_within(&self, credentials_file: &Path, inner: &Path) -> PathBuf {
        if inner.is_absolute() {
            self.resolve(inner)
        } else {
            credentials_file.parent().unwrap_or(Path::new(".")).join(inner)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_map_under_the_root() {
        let c = CredentialsRoot::new(Some("/tmp/creds".into()));
        assert_eq!(
            c.resolve(Path::new("/etc/sfdc/credentials.json")),
            PathBuf::from("/tmp/creds/etc/sfdc/credentials.json")
        );
        assert_eq!(c.resolve(Path::new("rel/x.json")), PathBuf::from("rel/x.json"));
        let none = CredentialsRoot::default();
        assert_eq!(none.resolve(Path::new("/etc/x")), PathBuf::from("/etc/x"));
    }

    #[test]
    fn paths_inside_a_credentials_file() {
        let c = CredentialsRoot::new(Some("/r".into()));
        let file = c.resolve(Path::new("/etc/sfdc/credentials.json"));
        assert_eq!(c.resolve_within(&file, Path::new("key.pem")), PathBuf::from("/r/etc/sfdc/key.pem"));
        assert_eq!(c.resolve_within(&file, Path::new("/keys/k.pem")), PathBuf::from("/r/keys/k.pem"));
        // Written as an absolute path inside the root already (the simulator's --credentials-out).
        assert_eq!(c.resolve_within(&file, Path::new("/r/etc/sfdc/k.pem")), PathBuf::from("/r/etc/sfdc/k.pem"));
    }
}
