//! vsftpd's listings that describe the listed path itself (a folder the user may not read, a
//! file named by the URL): never taken as a folder holding an entry of its own name, in a pull
//! or a push; a genuine `a/a` still mirrors.

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::Path;

use super::pull;
use crate::support::{self, real_servers, sync, RealServer, Tree};

/// vsftpd's scratch folder `name` holding `top.txt`, `a/a/f` (a genuine child named as its
/// folder) and `secret/db.sql` in a folder owned by root, mode 700: unreadable for the FTP user.
fn vsftpd_with_unreadable_folder(name: &str) -> Option<(String, std::path::PathBuf)> {
    let server: RealServer = real_servers().into_iter().find(|s| s.name == "vsftpd")?;
    let (url, dir) = server.scratch(name);
    let owner = std::fs::metadata(&server.root).unwrap();
    for (rel, text) in [("top.txt", "top"), ("a/a/f", "aa"), ("secret/db.sql", "db")] {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    for rel in ["", "top.txt", "a", "a/a", "a/a/f"] {
        chown(dir.join(rel), Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let secret = dir.join("secret");
    chown(&secret, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    Some((url, dir))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn an_unreadable_remote_folder_is_never_taken_as_holding_itself() {
    let Some((url, dir)) = vsftpd_with_unreadable_folder("pull_unreadable") else {
        return;
    };
    let local = Tree::new();
    std::fs::create_dir(local.path().join("secret")).unwrap();
    std::fs::write(local.path().join("secret/db.sql"), "yesterday's").unwrap();
    let run = pull(&url, local.path(), &["--delete"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("cannot read remote folder"), "{run}");
    assert_eq!(read(&local.path().join("secret/db.sql")), "yesterday's");
    assert_eq!(read(&local.path().join("a/a/f")), "aa", "a genuine a/a");

    // A push lists the same way: the folder it cannot read is not emptied.
    let source = Tree::new();
    std::fs::write(source.path().join("top.txt"), "top").unwrap();
    let run = sync(source.path(), &url, &["--delete"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("cannot read remote folder"), "{run}");
    assert!(dir.join("secret/db.sql").exists());

    // As the root, it is an error before anything changes.
    let run = pull(&format!("{url}/secret"), local.path(), &["--delete"]);
    assert_eq!(run.code, 2, "{run}");
    assert_eq!(read(&local.path().join("secret/db.sql")), "yesterday's");
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn a_url_naming_a_file_is_refused_by_a_pull_and_a_push() {
    let Some((url, dir)) = vsftpd_with_unreadable_folder("pull_file_url") else {
        return;
    };
    let local = Tree::new();
    std::fs::write(local.path().join("other.html"), "mine").unwrap();
    let run = pull(&format!("{url}/top.txt"), local.path(), &["--delete"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("is a file, not a folder"), "{run}");
    assert_eq!(read(&local.path().join("other.html")), "mine");

    let run = sync(local.path(), &format!("{url}/top.txt"), &["--delete"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("is a file, not a folder"), "{run}");
    assert_eq!(read(&dir.join("top.txt")), "top");
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn a_pull_from_a_missing_folder_is_an_error_even_with_force() {
    let Some((url, _)) = vsftpd_with_unreadable_folder("pull_missing") else {
        return;
    };
    let local = Tree::new();
    std::fs::write(local.path().join("precious.txt"), "mine").unwrap();
    let missing = format!("{url}/typo");
    for extra in [&["--delete", "--force"][..], &["--delete"]] {
        let run = pull(&missing, local.path(), extra);
        assert_eq!(run.code, 2, "{run}");
        assert!(run.stderr.contains("does not exist"), "{run}");
        assert!(!run.stderr.contains("lists empty"), "{run}");
        assert_eq!(read(&local.path().join("precious.txt")), "mine");
    }
    // An empty folder that exists is no error.
    let empty = Tree::new();
    let run = pull(&format!("{url}/a/a"), empty.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
}

/// The name a download of a file of `size` bytes listed at `mtime` writes first (see
/// `ftpsync::local::write::temp_name`).
fn download_temp_name(name: &str, size: u64, mtime: i64) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in size.to_le_bytes().into_iter().chain(mtime.to_le_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!(".{name}.{hash:016x}.ftpsync-tmp")
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn a_download_listed_to_the_minute_never_resumes_another_versions_beginning() {
    let Some((url, dir)) = vsftpd_with_unreadable_folder("pull_no_splice") else {
        return;
    };
    const SIZE: usize = 9 * 1024 * 1024;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Listed by vsftpd (UTC, to the minute) as this minute, whichever second it was written.
    let minute = now - now % 60 - 120;
    let remote = dir.join("a/big.bin");
    std::fs::write(&remote, vec![b'n'; SIZE]).unwrap();
    support::set_mtime(&remote, minute as u64 + 30);
    // The beginning an interrupted download of the version before (same size, same minute).
    let local = Tree::new();
    std::fs::create_dir(local.path().join("a")).unwrap();
    let temp = local
        .path()
        .join("a")
        .join(download_temp_name("big.bin", SIZE as u64, minute));
    std::fs::write(&temp, vec![b'o'; 1024 * 1024]).unwrap();
    let run = pull(&url, local.path(), &[]);
    assert_eq!(run.code, 1, "{run}");
    let got = std::fs::read(local.path().join("a/big.bin")).unwrap();
    assert!(got.iter().all(|&b| b == b'n'), "no byte of the old version");
    assert!(!temp.exists());
}
