//! One run at a time per remote folder: an exclusive lock on a file in the state folder, keyed
//! on what the folder is (the server's address and port as connected, the user, the absolute
//! path after login), not on how the URL spells it, so `host` and its IP, `//abs/path` and the
//! same folder relative to the login folder, `a/./b`, or an omitted and an explicit `anonymous`
//! all meet the same lock. A cron job that starts while the previous run is still going exits
//! instead of racing it. The operating system releases the lock when the process ends, however
//! it ends; the process keeps it until then (periodic mode holds it across cycles).
//!
//!
//! Each sync cycle also marks itself running: a file named after its token (see
//! [`crate::temp_name`]) in `runs/` beside the locks, locked while the cycle runs. A temporary
//! file whose token has such a mark that nobody holds was left by a cycle of this machine that
//! is over, whatever URL it used: safe to remove at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::temp_name::{RunToken, STALE_AFTER_SECS};

/// Another run holds the lock, or the lock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("another ftpsync is already syncing to {target} (lock {}); wait for it to finish", path.display())]
    Busy { target: String, path: PathBuf },
    /// A pull into a folder above this one runs (see [`hold_dir`]).
    #[error("another ftpsync is pulling into {}, which holds {target}; wait for it to finish", path.display())]
    Above { target: String, path: PathBuf },
    /// A pull into a folder inside this one runs (see [`hold_dir`]).
    #[error("another ftpsync is pulling into a folder inside {target}; wait for it to finish")]
    Inside { target: String },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a remote folder is, for the lock: `user@address:port/absolute/path`.
pub(crate) fn folder_key(
    user: &str,
    addr: SocketAddr,
    login_dir: Option<&str>,
    target_path: &str,
) -> String {
    let user = if user.is_empty() { "anonymous" } else { user };
    let path = if target_path.starts_with('/') {
        normalize(target_path)
    } else {
        match login_dir {
            Some(dir) => normalize(&format!("{dir}/{target_path}")),
            // The server would not say where login leads: the path relative to it.
            None => format!("~{}", normalize(target_path)),
        }
    };
    // The IP without an IPv4-mapped IPv6 form, so both spellings of one address agree.
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    format!(
        "{}@{}{path}",
        user.to_lowercase(),
        SocketAddr::new(ip, addr.port())
    )
}

/// `path` as an absolute path without `.`, `..` or repeated slashes.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Locks held by this process, kept until it ends.
static HELD: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// Takes (or, if this process has it already, keeps) the lock at `path` for `target` (shown in
/// the error), without waiting.
pub(crate) fn hold(path: &Path, target: &str) -> Result<(), LockError> {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if !held.iter().any(|(p, _)| p == path) {
        held.push((path.to_owned(), acquire(path, target)?));
    }
    Ok(())
}

/// Takes (or keeps) a lock on the folder `dir` itself (flock on the folder, opened read-only):
/// whatever state folder each run uses, or none, one run at a time writes into it. `dir` must
/// be canonical. The folders above it are locked too, shared: a run writing into one of them
/// (which would list, replace or delete what this one writes) and this one exclude each other,
/// while runs into folders side by side do not. A folder above that cannot be opened is passed
/// over.
pub(crate) fn hold_dir(dir: &Path, target: &str) -> Result<(), LockError> {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.iter().any(|(p, _)| p == dir) {
        return Ok(());
    }
    let mut above = Vec::new();
    for folder in dir.ancestors().skip(1) {
        let Ok(file) = File::open(folder) else {
            continue;
        };
        match file.try_lock_shared() {
            Ok(()) => above.push((folder.to_owned(), file)),
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Above {
                    target: target.to_owned(),
                    path: folder.to_owned(),
                })
            }
            Err(TryLockError::Error(_)) => {}
        }
    }
    let file = File::open(dir).map_err(|source| LockError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let own = match take(file, dir, target) {
        // Held shared: a run writes into a folder inside this one.
        Err(LockError::Busy { .. }) if !dir_held_exclusively(dir) => {
            return Err(LockError::Inside {
                target: target.to_owned(),
            })
        }
        taken => taken?,
    };
    held.extend(above);
    held.push((dir.to_owned(), own));
    Ok(())
}

/// Whether another process holds the lock on the folder `dir` exclusively (a run writing into
/// it), rather than shared (runs writing into folders inside it).
fn dir_held_exclusively(dir: &Path) -> bool {
    File::open(dir).is_ok_and(|f| matches!(f.try_lock_shared(), Err(TryLockError::WouldBlock)))
}

fn acquire(path: &Path, target: &str) -> Result<File, LockError> {
    take(open_lock_file(path)?, path, target)
}

/// `file` once locked, without waiting.
fn take(file: File, path: &Path, target: &str) -> Result<File, LockError> {
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(LockError::Busy {
            target: target.to_owned(),
            path: path.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(LockError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

fn open_lock_file(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io)
}

/// Marks the cycle `token` running for as long as it lives (see the module header).
#[derive(Debug)]
pub(crate) struct CycleMark {
    _file: File,
    path: PathBuf,
}

impl CycleMark {
    /// Ends the mark of a cycle that left no temporary file (every upload renamed into
    /// place): nothing is left for a later run to clean up, so the mark goes too. A cycle
    /// that failed or was stopped keeps its mark, so that the next run removes its leftovers.
    pub(crate) fn end_clean(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Marks the cycle `token` as running on this machine, in `state_dir`. Marks of cycles that
/// ended more than [`STALE_AFTER_SECS`] ago are cleared on the way: their leftovers are old
/// enough to go anyway.
pub(crate) fn mark_cycle(state_dir: &Path, token: &RunToken) -> Result<CycleMark, LockError> {
    let runs = state_dir.join(RUNS_DIR);
    prune_marks(&runs);
    let path = runs.join(token.as_str());
    let file = acquire(&path, token.as_str())?;
    Ok(CycleMark { _file: file, path })
}

/// Whether `token` is a cycle of this machine that is over: its mark exists and nobody holds
/// it. False for cycles this machine never ran (another machine's) and for running ones.
pub(crate) fn cycle_is_over(state_dir: &Path, token: &RunToken) -> bool {
    let Ok(file) = File::open(state_dir.join(RUNS_DIR).join(token.as_str())) else {
        return false;
    };
    // The test lock is released when `file` closes, at once.
    file.try_lock().is_ok()
}

const RUNS_DIR: &str = "runs";

fn prune_marks(runs: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    let now = crate::temp_name::unix_now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(token) = name.to_str().and_then(RunToken::parse) else {
            continue;
        };
        if now - token.started() > STALE_AFTER_SECS
            && cycle_is_over(runs.parent().unwrap_or(runs), &token)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_held_by_another_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.lock");
        let other = File::create(&path).unwrap();
        other.try_lock().unwrap();
        let err = hold(&path, "ftp://h/x").unwrap_err();
        assert!(
            err.to_string().contains("already syncing to ftp://h/x"),
            "{err}"
        );
        drop(other);
        hold(&path, "ftp://h/x").unwrap();
        hold(&path, "ftp://h/x").expect("this process holds it already");
    }

    #[test]
    fn a_cycle_is_over_once_its_mark_is_dropped_and_unknown_cycles_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let token = RunToken::new();
        let mark = mark_cycle(dir.path(), &token).unwrap();
        assert!(!cycle_is_over(dir.path(), &token), "running");
        drop(mark);
        assert!(cycle_is_over(dir.path(), &token));
        assert!(
            !cycle_is_over(dir.path(), &RunToken::new()),
            "never ran here"
        );
        // A clean cycle leaves no mark behind: the runs folder does not grow with every run.
        let clean = RunToken::new();
        mark_cycle(dir.path(), &clean).unwrap().end_clean();
        assert!(!dir.path().join(RUNS_DIR).join(clean.as_str()).exists());
    }

    #[test]
    fn one_folder_has_one_key_however_the_url_spells_it() {
        let addr: SocketAddr = "192.0.2.7:21".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:21".parse().unwrap();
        let key = folder_key("bob", addr, Some("/home/bob"), "www");
        assert_eq!(key, "bob@192.0.2.7:21/home/bob/www");
        for (user, addr, pwd, path) in [
            ("bob", addr, Some("/home/bob"), "//home/bob/www"),
            ("bob", addr, Some("/home/bob"), "/home/bob/www/"),
            ("bob", addr, Some("/home/bob"), "./www/./"),
            ("bob", addr, Some("/home/bob"), "x/../www"),
            ("bob", addr, Some("/home/bob/"), "www"),
            ("bob", mapped, Some("/home/bob"), "www"),
            ("Bob", addr, Some("/home/bob"), "www"),
        ] {
            assert_eq!(folder_key(user, addr, pwd, path), key, "{path}");
        }
        assert_eq!(
            folder_key("", addr, Some("/"), ""),
            folder_key("anonymous", addr, Some("/"), "/")
        );
        assert_ne!(folder_key("bob", addr, Some("/home/bob"), "www2"), key);
    }
}
