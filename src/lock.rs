//! One run at a time per remote folder: an exclusive lock on a file in the state folder, keyed
//! on what the folder is (the server's address and port as connected, the user, the absolute
//! path after login), not on how the URL spells it, so `host` and its IP, `//abs/path` and the
//! same folder relative to the login folder, `a/./b`, or an omitted and an explicit `anonymous`
//! all meet the same lock. A cron job that starts while the previous run is still going exits
//! instead of racing it. The operating system releases the lock when the process ends, however
//! it ends; the process keeps it until then (periodic mode holds it across cycles).
//!
//! The lock file also lists the tokens of this machine's recent cycles on that folder (see
//! [`crate::temp_name`]): while we hold the lock none of them is running, so their temporary
//! files are leftovers, safe to remove.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::temp_name::RunToken;

/// Tokens of earlier cycles kept in a lock file: their temporary files are removed at once.
/// Older cycles' leftovers wait for [`crate::temp_name::STALE_AFTER_SECS`] instead.
const TOKENS_KEPT: usize = 64;

/// Bytes of a lock file read at most (it holds [`TOKENS_KEPT`] short lines).
const MAX_LOCK_FILE: u64 = 64 * 1024;

/// Another run holds the lock, or the lock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another ftpsync is already syncing to {target} (lock {}); wait for it to finish", path.display())]
    Busy { target: String, path: PathBuf },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a remote folder is, for the lock: `user@address:port/absolute/path`.
pub fn folder_key(
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

/// A lock this process holds.
struct Held {
    path: PathBuf,
    file: File,
    /// Tokens of cycles that ran on this folder from this machine, oldest first.
    tokens: Vec<RunToken>,
}

/// Locks held by this process, kept until it ends.
static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

/// Takes (or, if this process has it already, keeps) the lock at `path` for `target` (shown in
/// the error), without waiting, and records `token` as one of this folder's cycles. Returns
/// the tokens of the folder's earlier cycles on this machine, none of which is running.
pub fn hold(path: &Path, target: &str, token: &RunToken) -> Result<Vec<RunToken>, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    let i = match held.iter().position(|h| h.path == path) {
        Some(i) => i,
        None => {
            held.push(acquire(path, target)?);
            held.len() - 1
        }
    };
    let lock = &mut held[i];
    let ended = lock.tokens.clone();
    if !lock.tokens.contains(token) {
        lock.tokens.push(token.clone());
        let excess = lock.tokens.len().saturating_sub(TOKENS_KEPT);
        lock.tokens.drain(..excess);
        let text: String = lock
            .tokens
            .iter()
            .map(|t| format!("{}\n", t.as_str()))
            .collect();
        let file = &mut lock.file;
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
    }
    Ok(ended)
}

fn acquire(path: &Path, target: &str) -> Result<Held, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::Busy {
                target: target.to_owned(),
                path: path.to_owned(),
            })
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let mut text = String::new();
    // A damaged lock file only costs the immediate removal of old leftovers.
    let _ = (&mut file).take(MAX_LOCK_FILE).read_to_string(&mut text);
    let tokens = text.lines().filter_map(RunToken::parse).collect();
    Ok(Held {
        path: path.to_owned(),
        file,
        tokens,
    })
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
        let err = hold(&path, "ftp://h/x", &RunToken::new()).unwrap_err();
        assert!(
            err.to_string().contains("already syncing to ftp://h/x"),
            "{err}"
        );
        drop(other);
        hold(&path, "ftp://h/x", &RunToken::new()).unwrap();
    }

    #[test]
    fn each_cycle_learns_the_tokens_of_the_cycles_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.lock");
        let (a, b) = (RunToken::new(), RunToken::new());
        assert_eq!(hold(&path, "t", &a).unwrap(), Vec::<RunToken>::new());
        assert_eq!(hold(&path, "t", &b).unwrap(), vec![a.clone()]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n{}\n", a.as_str(), b.as_str()));
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
