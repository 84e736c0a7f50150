//! `--chmod` and `--perms`: the modes uploaded files and created folders get on the real servers
//! (read on disk, where the servers keep their folders), and what a server that refuses
//! `SITE CHMOD` (libunftp answers 502) gets: one warning, every file uploaded, exit 0.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::faults::FaultProxy;
use crate::support::{assert_mirror, real_servers, sync, FtpServer, RealServer, Tree};

/// The permission bits of `path` (links not followed).
fn mode(path: &Path) -> u32 {
    let metadata =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    metadata.permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every entry below `root` (not `root` itself) with its mode, as `rel/` for folders.
fn modes_below(root: &Path) -> Vec<(String, u32)> {
    let mut found: Vec<(String, u32)> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|entry| {
            let entry = entry.unwrap();
            let rel = entry.path().strip_prefix(root).unwrap();
            let mut rel = rel.to_string_lossy().into_owned();
            if entry.file_type().is_dir() {
                rel.push('/');
            }
            (rel, mode(entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// Files of mode 644 and folders of mode 755, enough of them for uploads to be chained.
fn site() -> Tree {
    let tree = Tree::new();
    for i in 0..12 {
        tree.write(&format!("page{i}.html"), format!("<p>{i}</p>"));
        tree.write(&format!("css/deep/style{i}.css"), "p {}");
    }
    // Sibling folders, created together in one batch.
    for folder in ["img", "js", "fonts", "docs"] {
        tree.write(&format!("{folder}/{folder}.txt"), folder);
        set_mode(&tree.join(&format!("{folder}/{folder}.txt")), 0o644);
        set_mode(&tree.join(folder), 0o755);
    }
    for rel in ["css", "css/deep"] {
        set_mode(&tree.join(rel), 0o755);
    }
    for i in 0..12 {
        set_mode(&tree.join(&format!("page{i}.html")), 0o644);
        set_mode(&tree.join(&format!("css/deep/style{i}.css")), 0o644);
    }
    tree
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_give_uploaded_files_and_created_folders_the_modes_chmod_asks_for() {
    for server in real_servers() {
        uploads_get_the_modes_chmod_asks_for(&server, &[]);
    }
}

/// `--chmod F600,D700` on `server` (with `extra` options), chained and one at a time: every
/// file and folder has its mode on disk; a rerun with other rules leaves them alone.
pub(crate) fn uploads_get_the_modes_chmod_asks_for(server: &RealServer, extra: &[&str]) {
    let tree = site();
    // Chained uploads (SITE CHMOD in the write with RNFR/RNTO), and one at a time.
    for (i, how) in [&[][..], &["--inplace"]].into_iter().enumerate() {
        let (url, dir) = server.scratch(&format!("chmod_modes_{i}"));
        let args = [extra, how, &["-j", "2", "--chmod", "F600,D700"]].concat();
        let run = sync(tree.path(), &url, &args);
        let what = format!("{} {how:?}", server.name);
        assert_eq!(run.code, 0, "{what}: {run}");
        assert_eq!(refusal_warnings(&run.stderr), 0, "{what}: {run}");
        assert_mirror(tree.path(), &dir);
        for (rel, got) in modes_below(&dir) {
            let expected = if rel.ends_with('/') { 0o700 } else { 0o600 };
            assert_eq!(got, expected, "{what}: {rel} is {got:o}");
        }

        // Unchanged entries are left alone, whatever the rules say now.
        let args = [extra, how, &["--chmod", "F644,D755"]].concat();
        let rerun = sync(tree.path(), &url, &args);
        assert_eq!(rerun.summary["files_uploaded"], 0, "{what}: {rerun}");
        assert_eq!(mode(&dir.join("page0.html")), 0o600, "{what}");
        assert_eq!(mode(&dir.join("css")), 0o700, "{what}");
    }
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_give_uploads_their_local_modes_with_perms() {
    let tree = site();
    set_mode(&tree.join("page1.html"), 0o640);
    set_mode(&tree.join("page2.html"), 0o604);
    set_mode(&tree.join("css/deep/style3.css"), 0o751);
    set_mode(&tree.join("css/deep"), 0o750);
    set_mode(&tree.join("css"), 0o711);
    for server in real_servers() {
        let (url, dir) = server.scratch("perms_local_modes");
        let run = sync(tree.path(), &url, &["-j", "2", "--perms"]);
        assert_eq!(run.code, 0, "{}: {run}", server.name);
        assert_eq!(
            modes_below(&dir),
            modes_below(tree.path()),
            "{}: the local modes",
            server.name
        );
        assert_eq!(mode(&dir.join("css/deep/style3.css")), 0o751);
    }
}

/// Lines of `stderr` that warn about refused modes.
fn refusal_warnings(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains("refused to set a mode"))
        .count()
}

#[test]
fn a_server_that_refuses_site_chmod_gets_one_warning_and_every_file() {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), vec![]);
    let tree = site();
    let run = sync(
        tree.path(),
        &proxy.url(&server.url("site")),
        &["-j", "3", "--chmod", "D755,F644"],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_uploaded"], 28, "{run}");
    assert_mirror(tree.path(), &server.remote_dir("site"));
    assert_eq!(refusal_warnings(&run.stderr), 1, "{run}");
    let warning = run.stderr.lines().find(|l| l.contains("refused")).unwrap();
    assert!(
        warning.contains("502") && warning.contains("without the modes"),
        "names the reply and what it means: {warning}"
    );
    // Once refused, no more: only those already on their way (a batch of folders, the next
    // upload or two on each connection) follow the first.
    let sent = proxy
        .commands()
        .iter()
        .filter(|c| c.starts_with("SITE CHMOD"))
        .count();
    assert!((1..=15).contains(&sent), "{sent} SITE CHMOD for 34 entries");
}

#[test]
fn without_chmod_or_perms_no_mode_is_sent() {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), vec![]);
    let tree = site();
    let run = sync(tree.path(), &proxy.url(&server.url("site")), &["-j", "3"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(refusal_warnings(&run.stderr), 0, "{run}");
    let commands = proxy.commands();
    assert!(
        commands.iter().any(|c| c.starts_with("RNTO")),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|c| c.starts_with("SITE CHMOD")),
        "{commands:?}"
    );
}
