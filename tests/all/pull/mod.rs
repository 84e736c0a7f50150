//! Pulls (`ftpsync URL LOCAL_DIR`): the remote folder mirrored into a local one, the server only
//! ever read. In-process server here and in [`safety`]; the real servers in [`real`].

mod chain;
mod folder_times;
mod guards;
mod real;
mod real_vsftpd;
mod safety;

use std::path::Path;

use crate::support::faults::FaultProxy;
use crate::support::{self, assert_mirror, changed_files, snapshot, FtpServer, Run, Tree};

/// Runs `ftpsync --json EXTRA... URL LOCAL` (a pull).
pub fn pull(url: &str, local: &Path, extra: &[&str]) -> Run {
    let mut cmd = support::ftpsync();
    cmd.arg("--json").args(extra).arg(url).arg(local);
    support::run(&mut cmd)
}

/// Writes the tree with the awkward cases the push tests use (binary bytes, CRLF, an empty
/// file and folder, spaces, non-ASCII, a dot file, nesting, a multi-MiB file) under `root`.
pub fn write_awkward_tree(root: &Path) -> usize {
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "bin/all-bytes.dat",
            (0..=255u8).cycle().take(256 * 40).collect(),
        ),
        (
            "text/crlf.txt",
            b"line one\r\nline two\r\n\nlone LF\n".to_vec(),
        ),
        ("empty.txt", Vec::new()),
        ("with space/file name with  spaces.txt", b"spaces".to_vec()),
        (
            "non-ascii/h\u{e9}llo w\u{f6}rld \u{65e5}\u{672c}.txt",
            b"unicode".to_vec(),
        ),
        (".htaccess", b"deny from all\n".to_vec()),
        ("a/b/c/d/deep.txt", b"deep".to_vec()),
        ("large.bin", vec![7u8; 3 * 1024 * 1024 + 17]),
    ];
    for (rel, bytes) in &files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    std::fs::create_dir_all(root.join("empty folder")).unwrap();
    files.len()
}

/// Commands that change something on a server: none may appear in a pull's command log.
const WRITING_COMMANDS: [&str; 10] = [
    "STOR", "APPE", "STOU", "DELE", "RMD", "MKD", "RNFR", "RNTO", "SITE", "MFMT",
];

/// The commands of `log` that would change the server.
pub fn writes_in(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|c| {
            let word = c.split(' ').next().unwrap_or("").to_ascii_uppercase();
            WRITING_COMMANDS.contains(&word.as_str())
                || (word == "MDTM" && c.split(' ').count() > 2)
        })
        .cloned()
        .collect()
}

#[test]
fn a_pull_mirrors_every_byte_and_names_and_sets_the_remote_times() {
    let server = FtpServer::start();
    let files = write_awkward_tree(&server.remote_dir("site"));
    support::set_mtime(&server.remote_dir("site/text/crlf.txt"), 1_600_000_000);
    let local = Tree::new();
    let dest = local.join("backup/site");
    let run = pull(&server.url("site"), &dest, &["-j", "4"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(&dest, &server.remote_dir("site"));
    assert_eq!(run.summary["direction"], "pull", "{run}");
    assert_eq!(run.summary["files_downloaded"], files, "{run}");
    assert_eq!(run.summary["files_uploaded"], 0, "{run}");
    assert_eq!(run.summary["failed"], 0, "{run}");
    assert_eq!(support::mtime(&dest.join("text/crlf.txt")), 1_600_000_000);
    let leftovers: Vec<_> = support::snapshot(&dest)
        .into_keys()
        .filter(|k| k.ends_with(".ftpsync-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_rerun_downloads_nothing_and_only_changes_move() {
    let server = FtpServer::start();
    let files = write_awkward_tree(&server.remote_dir("site"));
    let local = Tree::new();
    assert_eq!(pull(&server.url("site"), local.path(), &[]).code, 0);
    let before = snapshot(local.path());
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_downloaded"], 0, "{run}");
    assert_eq!(run.summary["unchanged"], files, "{run}");
    assert_eq!(
        changed_files(&before, &snapshot(local.path())),
        Vec::<String>::new()
    );

    let remote = server.remote_dir("site");
    std::fs::write(remote.join("text/crlf.txt"), "longer than before\n").unwrap();
    std::fs::write(remote.join("added.txt"), "new").unwrap();
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_downloaded"], 2, "{run}");
    let changed = changed_files(&before, &snapshot(local.path()));
    assert_eq!(changed, ["added.txt", "text/crlf.txt"]);
    assert_mirror(local.path(), &remote);
}

#[test]
fn delete_removes_what_the_server_lacks_only_with_delete_and_within_max_delete() {
    let server = FtpServer::start();
    let remote = server.remote_dir("site");
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::write(remote.join("kept.txt"), "k").unwrap();
    let local = Tree::new();
    local.write("extra.txt", "x");
    local.write("old/inner.txt", "y");
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(local.join("extra.txt").exists(), "kept without --delete");

    let run = pull(
        &server.url("site"),
        local.path(),
        &["--delete", "--max-delete", "2"],
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("more than --max-delete 2"), "{run}");
    assert!(local.join("old/inner.txt").exists() && local.join("extra.txt").exists());

    let run = pull(&server.url("site"), local.path(), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["deleted"], 3, "{run}");
    assert_mirror(local.path(), &remote);
}

#[test]
fn an_empty_remote_folder_needs_force_to_empty_the_local_one() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.remote_dir("site/only-folders")).unwrap();
    let local = Tree::new();
    local.write("precious.txt", "p");
    let run = pull(&server.url("site"), local.path(), &["--delete"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("add --force"), "{run}");
    assert!(local.join("precious.txt").exists());
    let run = pull(&server.url("site"), local.path(), &["--delete", "--force"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(!local.join("precious.txt").exists());
    assert!(local.join("only-folders").is_dir());
}

#[test]
fn a_pull_only_reads_the_server() {
    let server = FtpServer::start();
    write_awkward_tree(&server.remote_dir("site"));
    let before = support::tree_digest(&server.remote_dir("site"));
    let proxy = FaultProxy::start(&server.addr(), vec![]);
    let local = Tree::new();
    local.write("stale.txt", "goes");
    local.write("bin/all-bytes.dat", "a shorter version");
    let run = pull(
        &proxy.url(&server.url("site")),
        local.path(),
        &["--delete", "-j", "3"],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(local.path(), &server.remote_dir("site"));
    let log = proxy.commands();
    assert!(log.iter().any(|c| c.starts_with("RETR")), "{log:?}");
    assert_eq!(writes_in(&log), Vec::<String>::new());
    assert_eq!(support::tree_digest(&server.remote_dir("site")), before);
}

#[test]
fn a_dry_run_pull_changes_nothing_and_says_what_it_would_do() {
    let server = FtpServer::start();
    let files = write_awkward_tree(&server.remote_dir("site"));
    let local = Tree::new();
    local.write("stale.txt", "s");
    let run = pull(
        &server.url("site"),
        local.path(),
        &["--dry-run", "--delete"],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_downloaded"], files, "{run}");
    assert_eq!(run.summary["deleted"], 1, "{run}");
    let names: Vec<_> = snapshot(local.path()).into_keys().collect();
    assert_eq!(names, ["stale.txt"]);
}

#[test]
fn watch_and_upload_only_options_are_refused_for_a_pull() {
    let local = Tree::new();
    for (option, says) in [
        ("--watch", "use --every"),
        ("--inplace", "applies only to uploads"),
    ] {
        let run = pull("ftp://127.0.0.1:9/site", local.path(), &[option]);
        assert_eq!(run.code, 2, "{run}");
        assert!(run.stderr.contains(says), "{option}: {run}");
    }
    let run = pull("ftp://127.0.0.1:9/a", Path::new("ftp://127.0.0.1:9/b"), &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("both arguments are URLs"), "{run}");
}

#[test]
fn every_keeps_pulling_on_a_clock() {
    let server = FtpServer::start();
    let remote = server.remote_dir("site");
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::write(remote.join("first.txt"), "1").unwrap();
    let local = Tree::new();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut child);
    let mut child = child
        .args(["--every", "200ms", "-q"])
        .arg(server.url("site"))
        .arg(local.path())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let arrived = |rel: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if local.join(rel).exists() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    };
    assert!(arrived("first.txt"));
    std::fs::write(remote.join("second.txt"), "2").unwrap();
    assert!(arrived("second.txt"), "a later cycle fetched the new file");
    child.kill().unwrap();
    child.wait().unwrap();
}
