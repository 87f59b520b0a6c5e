//! Every file under a folder, recursively (none when it does not exist). Included with
//! `#[path = "support/every_file.rs"] mod every_file;`.

use std::path::{Path, PathBuf};

pub fn every_file(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(every_file(&path));
        } else {
            files.push(path);
        }
    }
    files
}
