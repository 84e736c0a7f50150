//! [`Tree`]: a temporary local folder to sync from, with helpers to write, remove and re-date
//! files; [`set_mtime`] and [`mtime`] for any path.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

/// A temporary local folder to sync from. Paths given to its methods are relative to it.
pub struct Tree {
    pub dir: TempDir,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::Builder::new()
                .prefix("ftpsync-local-")
                .tempdir()
                .expect("create a local temp folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of `rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes the file `rel` (creating its parent folders) and returns its absolute path.
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|err| panic!("create {}: {err}", parent.display()));
        }
        fs::write(&path, bytes).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
        path
    }

    /// Creates the folder `rel` and its parents.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(&path).unwrap_or_else(|err| panic!("create {}: {err}", path.display()));
        path
    }

    /// Removes the file, symlink or folder (recursively) `rel`.
    pub fn remove(&self, rel: &str) {
        let path = self.join(rel);
        let meta = fs::symlink_metadata(&path)
            .unwrap_or_else(|err| panic!("remove {}: {err}", path.display()));
        if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .unwrap_or_else(|err| panic!("remove {}: {err}", path.display()));
    }

    /// Sets the modification time of `rel` (file or folder) to `unix_secs`.
    pub fn set_mtime(&self, rel: &str, unix_secs: u64) {
        set_mtime(&self.join(rel), unix_secs);
    }
}

/// Sets the modification time of `path` (file or folder) to `unix_secs`.
pub fn set_mtime(path: &Path, unix_secs: u64) {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(unix_secs);
    fs::File::open(path)
        .and_then(|file| file.set_modified(time))
        .unwrap_or_else(|err| panic!("set the mtime of {}: {err}", path.display()));
}

/// The modification time of `path` in whole seconds since the Unix epoch.
pub fn mtime(path: &Path) -> i64 {
    fs::metadata(path)
        .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()))
        .mtime()
}
