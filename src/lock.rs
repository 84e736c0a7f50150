//! One run at a time per target: an exclusive lock on a file next to the target's upload record,
//! so a cron job that starts while the previous run is still going exits instead of racing it.
//! The operating system releases the lock when the process ends, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Another run holds the lock, or the lock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another ftpsync is already syncing to {target} (lock {}); wait for it to finish", path.display())]
    Busy { target: String, path: PathBuf },
    #[error("cannot create the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock at `path` for `target` (shown in the error), without waiting.
pub fn acquire(path: &Path, target: &str) -> Result<RunLock, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Busy {
            target: target.to_owned(),
            path: path.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_target_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.lock");
        let first = acquire(&path, "ftp://h/x").unwrap();
        let err = acquire(&path, "ftp://h/x").unwrap_err();
        assert!(
            err.to_string().contains("already syncing to ftp://h/x"),
            "{err}"
        );
        drop(first);
        acquire(&path, "ftp://h/x").unwrap();
    }
}
