//! Local problems: an unreadable file, folder or entry, and a symlink not followed, are
//! reported and replace or delete nothing on the server; the rest is done.

use std::process::Command;

use crate::support::{self, isolate_env, sync, FtpServer, Tree};

use super::temp_files;

#[test]
fn symlinks_are_skipped_unless_followed() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("real/file.txt", "content");
    std::os::unix::fs::symlink("real/file.txt", tree.join("link.txt")).unwrap();
    let run = sync(tree.path(), &server.url("plain"), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("link.txt: symbolic link; skipped"),
        "{run}"
    );
    assert!(!server.remote_dir("plain/link.txt").exists());

    let run = sync(tree.path(), &server.url("followed"), &["-L"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        std::fs::read_to_string(server.remote_dir("followed/link.txt")).unwrap(),
        "content"
    );
}

#[test]
fn unreadable_local_file_is_reported_and_the_rest_is_done() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("readable.txt", "yes");
    let secret = tree.write("secret.txt", "no");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let mut cmd = ftpsync_as_unprivileged_user(&tree);
    let run = support::run(cmd.arg("--json").arg(tree.path()).arg(server.url("")));
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.summary["failed"], 1, "{run}");
    assert!(run.stderr.contains("secret.txt"), "{run}");
    assert_eq!(
        std::fs::read_to_string(server.remote_dir("readable.txt")).unwrap(),
        "yes"
    );
}

/// ftpsync as a user that file permissions apply to: `nobody` when the tests run as root.
fn ftpsync_as_unprivileged_user(tree: &Tree) -> assert_cmd::Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !is_root {
        return support::ftpsync();
    }
    let state = tempfile::tempdir().unwrap().keep();
    for dir in [tree.path(), state.as_path()] {
        let status = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let mut cmd = Command::new("setpriv");
    isolate_env(&mut cmd);
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_ftpsync"))
        .env("XDG_STATE_HOME", &state)
        .env("HOME", &state);
    assert_cmd::Command::from_std(cmd)
}

// Regression: a local folder that could not be read deleted the remote file in its place; an
// unreadable local file deleted the remote folder in its place, then failed to upload.
#[test]
fn an_unreadable_local_entry_replaces_nothing_on_the_server() {
    let server = FtpServer::start();
    std::fs::write(server.remote_dir("d"), "their file").unwrap();
    std::fs::create_dir_all(server.remote_dir("f/sub")).unwrap();
    std::fs::write(server.remote_dir("f/p1"), "their page").unwrap();
    std::fs::write(server.remote_dir("f/sub/p2"), "another").unwrap();
    let tree = Tree::new();
    tree.write("d/inside.txt", "mine");
    tree.write("f", "my file");
    let mut cmd = ftpsync_as_unprivileged_user(&tree);
    for rel in ["d", "f"] {
        std::fs::set_permissions(
            tree.join(rel),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
    }
    let run = support::run(
        cmd.args(["--json", "--delete"])
            .arg(tree.path())
            .arg(server.url("")),
    );
    for (rel, mode) in [("d", 0o755), ("f", 0o644)] {
        std::fs::set_permissions(
            tree.join(rel),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap();
    }
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.summary["deleted"], 0, "{run}");
    assert_eq!(
        std::fs::read_to_string(server.remote_dir("d")).unwrap(),
        "their file"
    );
    assert!(server.remote_dir("f/p1").exists(), "{run}");
    assert!(server.remote_dir("f/sub/p2").exists(), "{run}");
    assert_eq!(temp_files(&server.remote_dir("")), Vec::<String>::new());
}

// Regression: `chmod 000` on a local folder then --delete deleted every remote file in it.
#[test]
fn an_unreadable_local_folder_keeps_its_remote_counterpart() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.remote_dir("locked/inner")).unwrap();
    std::fs::write(server.remote_dir("locked/a.txt"), "a").unwrap();
    std::fs::write(server.remote_dir("locked/inner/b.txt"), "b").unwrap();
    std::fs::write(server.remote_dir("gone.txt"), "really gone locally").unwrap();
    let tree = Tree::new();
    tree.write("readable.txt", "yes");
    tree.write("locked/a.txt", "a");
    let locked = tree.join("locked");
    let mut cmd = ftpsync_as_unprivileged_user(&tree);
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let run = support::run(
        cmd.args(["--json", "--delete"])
            .arg(tree.path())
            .arg(server.url("")),
    );
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("locked"), "{run}");
    assert!(server.remote_dir("locked/a.txt").exists(), "{run}");
    assert!(server.remote_dir("locked/inner/b.txt").exists(), "{run}");
    assert!(server.remote_dir("readable.txt").exists());
    assert!(
        !server.remote_dir("gone.txt").exists(),
        "what is known to be gone still goes (the deletion phase is not simply off): {run}"
    );
}

#[test]
fn a_symlink_skipped_without_follow_keeps_its_remote_counterpart() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.remote_dir("linked")).unwrap();
    std::fs::write(server.remote_dir("linked/page.html"), "page").unwrap();
    std::fs::write(server.remote_dir("file-link.txt"), "target").unwrap();
    let tree = Tree::new();
    tree.write("real/page.html", "page");
    tree.write("real.txt", "target");
    std::os::unix::fs::symlink("real", tree.join("linked")).unwrap();
    std::os::unix::fs::symlink("real.txt", tree.join("file-link.txt")).unwrap();
    let run = sync(tree.path(), &server.url(""), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["deleted"], 0, "{run}");
    assert!(server.remote_dir("linked/page.html").exists());
    assert!(server.remote_dir("file-link.txt").exists());
}
