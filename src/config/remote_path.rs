//! Folders and files on the server that options name (`--manifest`, `--backup-dir`): checked,
//! and placed against the remote folder (inside it, they are ftpsync's own: never mirrored over,
//! never deleted).

use super::ConfigError;
use crate::ftp::target::Target;

/// `--backup-dir`: the folder on the server that a run's replaced and deleted files are moved
/// to, each run in a dated folder of its own (see [`crate::engine::backup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupDir {
    /// The folder as FTP commands name it (like [`Target::remote_path`]).
    pub(crate) path: String,
    /// Its path relative to the sync root when it lies inside the remote folder: never listed,
    /// uploaded into or deleted.
    pub(crate) rel: Option<String>,
}

impl BackupDir {
    /// Settles `--backup-dir` against `target`: refused when it is the remote folder or holds
    /// it (as far as the spelling tells; the run checks again against the login folder).
    pub(super) fn new(target: &Target, given: &str) -> Result<BackupDir, ConfigError> {
        let bad = |why: &'static str| ConfigError::BackupPath {
            path: given.to_string(),
            why,
        };
        // A folder may be written with a slash at the end.
        let folder = given.strip_suffix('/').unwrap_or(given);
        let (path, rel) = remote_path_in(target, folder).map_err(bad)?;
        let root = target.path.trim_end_matches('/');
        let same_spelling = path.starts_with('/') == target.path.starts_with('/');
        if path == root || (same_spelling && root.starts_with(&format!("{path}/"))) {
            return Err(bad(BACKUP_HOLDS_ROOT));
        }
        Ok(BackupDir { path, rel })
    }
}

/// Why a `--backup-dir` that is the remote folder, or above it, is refused.
pub(crate) const BACKUP_HOLDS_ROOT: &str =
    "that is the remote folder or a folder above it; name a folder beside the remote folder or inside it";

/// A remote path given on the command line (`--manifest`, `--backup-dir`), as FTP commands name
/// it (absolute, or relative to the login folder like the URL's path), and its path relative to
/// the sync root when it lies inside the remote folder (as far as the spelling tells).
pub(super) fn remote_path_in(
    target: &Target,
    given: &str,
) -> Result<(String, Option<String>), &'static str> {
    let (absolute, rest) = match given.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, given),
    };
    if rest.is_empty()
        || rest
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("give a path without empty, . or .. parts");
    }
    if given.chars().any(char::is_control) {
        return Err("control characters are not allowed");
    }
    let path = if absolute {
        format!("/{rest}")
    } else {
        rest.to_string()
    };
    // Inside the remote folder when the folder's path is a prefix (both spelt the way the URL's
    // path is: relative to the login folder, or absolute).
    let prefix = match target.path.trim_end_matches('/') {
        "" if target.path.starts_with('/') => "/".to_string(),
        "" => String::new(),
        root => format!("{root}/"),
    };
    let rel = if prefix.is_empty() {
        (!absolute).then(|| rest.to_string())
    } else {
        path.strip_prefix(&prefix).map(str::to_string)
    };
    Ok((path, rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup_dir(url: &str, given: &str) -> Result<BackupDir, ConfigError> {
        BackupDir::new(&Target::parse(url).unwrap(), given)
    }

    #[test]
    fn the_backup_dir_is_settled_like_the_manifest_and_never_holds_the_remote_folder() {
        let at = |url: &str, given: &str| {
            let b = backup_dir(url, given).unwrap();
            (b.path, b.rel)
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(at("ftp://h/www", "bak"), ("bak".into(), None));
        assert_eq!(at("ftp://h/www", "bak/"), ("bak".into(), None));
        assert_eq!(
            at("ftp://h/www", "www/.bak"),
            ("www/.bak".into(), some(".bak"))
        );
        assert_eq!(at("ftp://h/", "bak"), ("bak".into(), some("bak")));
        assert_eq!(
            at("ftp://h//srv/www", "/srv/bak"),
            ("/srv/bak".into(), None)
        );
        assert_eq!(
            at("ftp://h//srv/www", "srv/www/bak"),
            ("srv/www/bak".into(), None)
        );
        let refused = [
            ("ftp://h/www", "www"),
            ("ftp://h/www/", "www/"),
            ("ftp://h/a/www", "a"),
            ("ftp://h//srv/www", "/srv"),
            ("ftp://h//srv/www", "/srv/www"),
            ("ftp://h/www", ""),
            ("ftp://h/www", "/"),
            ("ftp://h/www", "a/../b"),
            ("ftp://h/www", "./b"),
            ("ftp://h/www", "b\nc"),
        ];
        for (url, given) in refused {
            let err = backup_dir(url, given).expect_err(given);
            assert!(err.to_string().starts_with("--backup-dir"), "{err}");
        }
    }
}
