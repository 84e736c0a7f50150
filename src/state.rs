//! The local record of what was uploaded to each target: path, size and local modification time
//! of every file ftpsync sent. It lets a rerun skip unchanged files on servers that cannot set a
//! file's time. Kept under the user's XDG state folder, one file per target, written atomically;
//! a missing or corrupt record only costs uploads, never a wrong skip.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::local::LocalEntry;

/// The version of a file that was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Seen {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    /// ftpsync set the remote file's time to the local one: a listing showing another time
    /// means the file was changed on the server since.
    #[serde(default)]
    pub(crate) time_set: bool,
}

impl Seen {
    /// The version of `local` as it is now.
    pub(crate) fn of(local: &LocalEntry, time_set: bool) -> Seen {
        Seen {
            size: local.size,
            mtime_ns: local.mtime_ns,
            time_set,
        }
    }

    /// Whether `local` is still the version that was uploaded.
    pub(crate) fn matches(&self, local: &LocalEntry) -> bool {
        self.size == local.size && self.mtime_ns == local.mtime_ns
    }
}

/// Uploaded versions by path relative to the sync root.
pub(crate) type Record = HashMap<String, Seen>;

const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct RecordFile {
    version: u32,
    target: String,
    files: Record,
}

/// Where the record of `target_key` lives: `$XDG_STATE_HOME/ftpsync/<hash>.json`.
pub(crate) fn record_path(state_dir: &Path, target_key: &str) -> PathBuf {
    state_dir.join(format!("{:016x}.json", fnv1a(target_key.as_bytes())))
}

/// The default state folder (`$XDG_STATE_HOME/ftpsync`, else `~/.local/state/ftpsync`).
pub(crate) fn default_state_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .map(|d| d.join("ftpsync"))
}

/// Loads the record; anything missing, unreadable or for another target gives an empty record.
pub(crate) fn load(path: &Path, target_key: &str) -> Record {
    let parsed = std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<RecordFile>(&bytes).ok());
    match parsed {
        Some(f) if f.version == FORMAT_VERSION && f.target == target_key => f.files,
        Some(_) => {
            tracing::warn!(path = %path.display(), "ignoring a state record of another target or version");
            Record::new()
        }
        None => Record::new(),
    }
}

/// Writes the record atomically (temporary file in the same folder, then rename).
pub(crate) fn save(path: &Path, target_key: &str, files: Record) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let file = RecordFile {
        version: FORMAT_VERSION,
        target: target_key.to_owned(),
        files,
    };
    serde_json::to_writer(std::io::BufWriter::new(tmp.as_file_mut()), &file)?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A stable hash for file names (std's hasher is randomised per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = record_path(dir.path(), "ftp://u@h:21/x");
        let mut rec = Record::new();
        rec.insert(
            "a/b.txt".into(),
            Seen {
                size: 3,
                mtime_ns: 42,
                time_set: false,
            },
        );
        save(&path, "ftp://u@h:21/x", rec.clone()).unwrap();
        assert_eq!(load(&path, "ftp://u@h:21/x"), rec);
    }

    #[test]
    fn corrupt_or_foreign_record_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path, "k").is_empty());
        save(
            &path,
            "other",
            Record::from([(
                "a".into(),
                Seen {
                    size: 1,
                    mtime_ns: 1,
                    time_set: false,
                },
            )]),
        )
        .unwrap();
        assert!(load(&path, "k").is_empty());
    }

    #[test]
    fn targets_get_distinct_files() {
        let d = Path::new("/s");
        assert_ne!(
            record_path(d, "ftp://u@h:21/a"),
            record_path(d, "ftp://u@h:21/b")
        );
    }
}
