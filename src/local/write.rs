//! Writing into the local tree, for a pull: folders created one level at a time, files written
//! under a temporary name beside their final one and renamed into place, entries removed,
//! folders given their remote times. Every path is the root joined with a '/'-separated
//! relative path whose parts the listing checked (see `crate::ftp::listing::is_safe_name`), and
//! no folder on the way may be a symbolic link: nothing outside the root is ever written,
//! removed or given a time, whatever the tree holds.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::temp_name::TEMP_SUFFIX;

/// `root/rel`, once every folder between them is checked to be a real folder (not a symbolic
/// link, not a file): what lies at the returned path is the caller's to create or replace.
pub(crate) fn checked_path(root: &Path, rel: &str) -> io::Result<PathBuf> {
    let mut path = root.to_path_buf();
    let mut parts = rel.split('/').peekable();
    while let Some(part) = parts.next() {
        if matches!(part, "" | "." | "..") || part.contains('\\') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing the path {rel:?}: it does not stay inside the local folder"),
            ));
        }
        path.push(part);
        if parts.peek().is_some() {
            let meta = std::fs::symlink_metadata(&path)?;
            if !meta.is_dir() {
                return Err(not_a_folder(&path, &meta));
            }
        }
    }
    Ok(path)
}

fn not_a_folder(path: &Path, meta: &std::fs::Metadata) -> io::Error {
    let what = if meta.file_type().is_symlink() {
        "a symbolic link (never followed)"
    } else {
        "not a folder"
    };
    io::Error::other(format!("{} is {what}", path.display()))
}

/// Creates the folder `rel`; an existing real folder is fine, anything else in its place
/// (a file, a symbolic link) is an error.
pub(crate) fn make_dir(root: &Path, rel: &str) -> io::Result<()> {
    let path = checked_path(root, rel)?;
    match std::fs::create_dir(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(&path)?;
            match meta.is_dir() {
                true => Ok(()),
                false => Err(not_a_folder(&path, &meta)),
            }
        }
        Err(e) => Err(e),
    }
}

/// Removes the file (or symbolic link: the link itself) or the empty folder at `rel`.
pub(crate) fn remove(root: &Path, rel: &str) -> io::Result<()> {
    let path = checked_path(root, rel)?;
    let meta = std::fs::symlink_metadata(&path)?;
    if meta.is_dir() {
        std::fs::remove_dir(&path)
    } else {
        std::fs::remove_file(&path)
    }
}

/// The temporary name a download of the remote file `name` (of `size` bytes and time `mtime`)
/// is written under: `.NAME.TOKEN.ftpsync-tmp`, where TOKEN is fixed by the remote size and
/// time, so a later run finds the beginning an interrupted one wrote, and only when the remote
/// file is still the same one.
pub(crate) fn temp_name(name: &str, size: u64, mtime: Option<i64>) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let time = mtime.unwrap_or(i64::MIN);
    for byte in size.to_le_bytes().into_iter().chain(time.to_le_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!(".{name}.{hash:016x}{TEMP_SUFFIX}")
}

/// Whether `name` is exactly a download's temporary name ([`temp_name`]): `.NAME.`, 16
/// lowercase hexadecimal digits, the suffix. Other names ending in the suffix are the user's.
pub(crate) fn is_download_temp(name: &str) -> bool {
    let Some((head, token)) = name
        .strip_suffix(TEMP_SUFFIX)
        .and_then(|s| s.rsplit_once('.'))
    else {
        return false;
    };
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    head.len() > 1 && head.starts_with('.') && token.len() == 16 && token.bytes().all(hex)
}

/// `path` (a temporary file) opened for writing: kept from byte `keep` on when it holds at
/// least that much and `keep` > 0, started afresh otherwise. Never opens through a symbolic
/// link. Returns the file, positioned at its end, and its length.
pub(crate) fn open_temp(path: &Path, keep: bool) -> io::Result<(File, u64)> {
    if keep {
        let opened = OpenOptions::new()
            .append(true)
            .custom_flags(no_follow())
            .open(path);
        match opened {
            Ok(file) => {
                let len = file.metadata()?.len();
                return Ok((file, len));
            }
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                std::fs::remove_file(path)?;
            }
            Err(_) => {}
        }
    } else if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path)?;
    }
    // create_new never follows a symbolic link at `path` (O_EXCL).
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    Ok((file, 0))
}

/// O_NOFOLLOW: opening a symbolic link fails instead of following it.
fn no_follow() -> i32 {
    #[cfg(target_os = "linux")]
    {
        rustix::fs::OFlags::NOFOLLOW.bits() as i32
    }
    #[cfg(not(target_os = "linux"))]
    {
        // macOS and the BSDs.
        0x0100
    }
}

/// How a folder is opened to set its time: never through a symbolic link, and never blocking
/// on what is not a folder (O_DIRECTORY; elsewhere O_NONBLOCK, the type checked once open).
fn folder_flags() -> i32 {
    #[cfg(target_os = "linux")]
    {
        (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::DIRECTORY).bits() as i32
    }
    #[cfg(not(target_os = "linux"))]
    {
        // O_NONBLOCK on macOS and the BSDs.
        no_follow() | 0x0004
    }
}

/// Finishes a downloaded temporary file: its time set to the remote one (`mtime`, Unix
/// seconds), its bytes on disk (fsync), then renamed to `final_path` (replacing a file or a
/// symbolic link there, never writing through it).
pub(crate) fn put_in_place(
    file: File,
    temp: &Path,
    final_path: &Path,
    mtime: Option<i64>,
) -> io::Result<()> {
    if let Some(unix) = mtime {
        file.set_modified(system_time(unix))?;
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(temp, final_path)
}

/// Gives the folder `rel` the time `unix` (Unix seconds), as a remote folder's. The folder
/// itself is opened, never through a symbolic link (on the way or at `rel`), and its time set
/// on what was opened: only a real folder inside the root gets a time, and the root itself
/// (`rel` empty), the folder the user named.
pub(crate) fn set_folder_time(root: &Path, rel: &str, unix: i64) -> io::Result<()> {
    // LOCAL_DIR itself (`rel` empty) is the folder the user named, a link to one included.
    let (path, flags) = match rel {
        "" => (root.to_path_buf(), 0),
        _ => (checked_path(root, rel)?, folder_flags()),
    };
    let folder = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&path)?;
    let meta = folder.metadata()?;
    if !meta.is_dir() {
        return Err(not_a_folder(&path, &meta));
    }
    folder.set_modified(system_time(unix))
}

/// The `SystemTime` of `unix` seconds (before 1970 too).
fn system_time(unix: i64) -> SystemTime {
    match u64::try_from(unix) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs()),
    }
}

/// Whether `error` says the local disk (or the user's quota) is full.
pub(crate) fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_through_symbolic_links_or_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        assert!(checked_path(dir.path(), "link/x").is_err());
        assert!(checked_path(dir.path(), "file/x").is_err());
        assert!(checked_path(dir.path(), "a/../../x").is_err());
        assert!(make_dir(dir.path(), "link").is_err(), "a link is no folder");
        assert!(make_dir(dir.path(), "link/sub").is_err());
        make_dir(dir.path(), "new").unwrap();
        make_dir(dir.path(), "new").unwrap();
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        assert_eq!(
            checked_path(dir.path(), "new/x").unwrap(),
            dir.path().join("new/x")
        );
    }

    #[test]
    fn a_folder_time_is_set_on_real_folders_inside_the_root_only() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::fs::create_dir(outside.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        make_dir(dir.path(), "a").unwrap();
        make_dir(dir.path(), "a/b").unwrap();
        set_folder_time(dir.path(), "a/b", 1_000_000_000).unwrap();
        set_folder_time(dir.path(), "a", -86_400).unwrap();
        let mtime = |p: &Path| std::fs::metadata(p).unwrap().mtime();
        assert_eq!(mtime(&dir.path().join("a/b")), 1_000_000_000);
        assert_eq!(mtime(&dir.path().join("a")), -86_400);
        for refused in ["link", "link/sub", "file", "missing", "a/../.."] {
            assert!(
                set_folder_time(dir.path(), refused, 5).is_err(),
                "{refused}"
            );
        }
        for untouched in [
            outside.path(),
            &outside.path().join("sub"),
            &dir.path().join("file"),
        ] {
            assert_ne!(mtime(untouched), 5, "{}", untouched.display());
        }
    }

    #[test]
    fn a_temporary_file_is_never_opened_through_a_link_and_resumes_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let temp = dir.path().join(".a.tmp");
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        let (_, len) = open_temp(&temp, true).unwrap();
        assert_eq!(len, 0);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        std::fs::write(&temp, "12345").unwrap();
        assert_eq!(open_temp(&temp, true).unwrap().1, 5);
        assert_eq!(open_temp(&temp, false).unwrap().1, 0);
    }

    #[test]
    fn temporary_names_follow_the_remote_version() {
        let a = temp_name("f.bin", 10, Some(100));
        assert!(crate::temp_name::is_temp_name(&a), "{a}");
        assert!(is_download_temp(&a), "{a}");
        for theirs in [
            ".draft.v2.ftpsync-tmp",
            ".x.0123456789ABCDEF.ftpsync-tmp",
            "..0123456789abcdef.ftpsync-tmp",
        ] {
            assert!(!is_download_temp(theirs), "{theirs}");
        }
        assert!(a.starts_with(".f.bin."));
        assert_eq!(a, temp_name("f.bin", 10, Some(100)));
        assert_ne!(a, temp_name("f.bin", 11, Some(100)));
        assert_ne!(a, temp_name("f.bin", 10, Some(101)));
    }
}
