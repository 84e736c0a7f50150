//! Folder times: a pull gives each local folder its remote folder's time (MLSD's to the
//! second), once nothing changes what the folder holds; a rerun keeps them, and sets them on a
//! tree an older ftpsync pulled; a time that cannot be set is a warning, not a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{pull, write_awkward_tree};
use crate::support::{self, changed_files, snapshot, FtpServer, Tree};

/// The time of each folder below `root` (not `root` itself), by its '/'-separated path;
/// symbolic links are not followed.
pub fn folder_times(root: &Path) -> BTreeMap<String, i64> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().is_dir())
        .map(|entry| {
            let rel = entry.path().strip_prefix(root).unwrap();
            let rel = rel.to_string_lossy().into_owned();
            (rel, support::mtime(entry.path()))
        })
        .collect()
}

/// Gives each folder below `root` its own old time (one a second apart, from `first` on),
/// once everything in them is written; returns them as [`folder_times`] does.
pub fn date_folders(root: &Path, first: u64) -> BTreeMap<String, i64> {
    let folders: Vec<String> = folder_times(root).into_keys().collect();
    for (i, rel) in folders.iter().enumerate() {
        support::set_mtime(&root.join(rel), first + 7 * i as u64);
    }
    folder_times(root)
}

/// A server whose folder `site` holds the awkward tree, its folders dated from `first` on.
fn dated_site(first: u64) -> (FtpServer, BTreeMap<String, i64>) {
    let server = FtpServer::start();
    write_awkward_tree(&server.remote_dir("site"));
    let times = date_folders(&server.remote_dir("site"), first);
    (server, times)
}

#[test]
fn a_pull_gives_each_folder_the_remote_folders_time_and_a_rerun_keeps_it() {
    let (server, remote_times) = dated_site(1_000_000_003);
    support::set_mtime(&server.remote_dir("site"), 999_999_001);
    let local = Tree::new();
    // Removed by --delete, after the downloads: its folder changes last.
    local.write("a/b/stale.txt", "goes");
    let run = pull(&server.url("site"), local.path(), &["-j", "4", "--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["deleted"], 1, "{run}");
    assert_eq!(folder_times(local.path()), remote_times, "{run}");
    // libunftp's MLSD has no line for the folder itself: the root is left alone (the real
    // servers' listings have one: see `pull::real`).
    assert_ne!(support::mtime(local.path()), 999_999_001);

    let before = snapshot(local.path());
    let rerun = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(rerun.code, 0, "{rerun}");
    assert_eq!(rerun.summary["files_downloaded"], 0, "{rerun}");
    assert_eq!(folder_times(local.path()), remote_times, "{rerun}");
    assert_eq!(
        changed_files(&before, &snapshot(local.path())),
        Vec::<String>::new()
    );
}

#[test]
fn a_rerun_sets_the_times_an_older_pull_left_and_a_dry_run_does_not() {
    let (server, remote_times) = dated_site(1_100_000_000);
    let local = Tree::new();
    assert_eq!(pull(&server.url("site"), local.path(), &[]).code, 0);
    // What an older ftpsync left: folders as new as the pull.
    let older = date_folders(local.path(), 1_700_000_000);
    assert_ne!(older, remote_times);
    let dry = pull(&server.url("site"), local.path(), &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert_eq!(folder_times(local.path()), older, "a dry run sets nothing");
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_downloaded"], 0, "{run}");
    assert_eq!(folder_times(local.path()), remote_times, "{run}");
}

/// A folder made immutable (`chattr +i`, as root on a file system that has it), made mutable
/// again when dropped. None where that cannot be done.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        let done = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .output();
        done.ok()
            .filter(|out| out.status.success())
            .map(|_| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_folder_whose_time_cannot_be_set_gets_a_warning_and_the_run_succeeds() {
    let server = FtpServer::start();
    let remote = server.remote_dir("site");
    for rel in ["locked/f.txt", "free/g.txt"] {
        std::fs::create_dir_all(remote.join(rel).parent().unwrap()).unwrap();
        std::fs::write(remote.join(rel), rel).unwrap();
    }
    let remote_times = date_folders(&remote, 1_200_000_000);
    let local = Tree::new();
    assert_eq!(pull(&server.url("site"), local.path(), &[]).code, 0);
    let older = date_folders(local.path(), 1_700_000_000);
    let Some(_locked) = Immutable::set(&local.join("locked")) else {
        eprintln!("skipped: chattr +i is not available here (it needs root and ext4 or alike)");
        return;
    };
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["failed"], 0, "{run}");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("time was not set"))
        .collect();
    assert_eq!(warnings.len(), 1, "{run}");
    assert!(warnings[0].contains("locked/: warning"), "{run}");
    let times = folder_times(local.path());
    assert_eq!(
        times["free"], remote_times["free"],
        "the others still get theirs"
    );
    assert_eq!(times["locked"], older["locked"], "{times:?}");
}
