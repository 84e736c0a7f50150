//! Safety rules that hold without any fault injected: atomic uploads and their leftovers,
//! delete limits, unsafe remote names, local problems, one run per target.

mod support;

use std::process::Command;

use support::{assert_mirror, isolate_env, sync, FtpServer, Tree};

fn temp_files(dir: &std::path::Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ftpsync-tmp"))
        .collect()
}

#[test]
fn leftover_temp_files_are_removed_and_not_counted() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("sub/page.html", "page");
    std::fs::create_dir_all(server.remote_dir("sub")).unwrap();
    std::fs::write(server.remote_dir("sub/.page.html.ftpsync-tmp"), "half a pa").unwrap();
    std::fs::write(server.remote_dir(".gone.bin.ftpsync-tmp"), "x").unwrap();
    let run = sync(tree.path(), &server.url(""), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        run.summary["deleted"], 0,
        "leftovers are not user files: {run}"
    );
    assert_eq!(temp_files(&server.remote_dir("")), Vec::<String>::new());
    assert_mirror(tree.path(), &server.remote_dir(""));
}

#[test]
fn inplace_uploads_skip_the_temporary_name() {
    // Guards --inplace: the rename step must not run (a STOR straight to the name).
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("a.txt", "abc");
    let run = sync(tree.path(), &server.url(""), &["--inplace"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir(""));
}

#[test]
fn max_delete_refuses_and_still_uploads() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("new.txt", "new");
    for i in 0..5 {
        std::fs::write(server.remote_dir(&format!("old{i}.txt")), "old").unwrap();
    }
    let run = sync(
        tree.path(),
        &server.url(""),
        &["--delete", "--max-delete", "3"],
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("refusing to delete 5 remote entries"),
        "{run}"
    );
    assert_eq!(run.summary["deleted"], 0);
    assert!(server.remote_dir("new.txt").exists());
    assert!(server.remote_dir("old0.txt").exists());

    let run = sync(
        tree.path(),
        &server.url(""),
        &["--delete", "--max-delete", "5"],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir(""));
}

#[test]
fn delete_from_an_empty_local_folder_needs_force() {
    let server = FtpServer::start();
    let tree = Tree::new();
    std::fs::write(server.remote_dir("precious.txt"), "keep me").unwrap();
    let run = sync(tree.path(), &server.url(""), &["--delete"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains("is empty") && run.stderr.contains("--force"),
        "{run}"
    );
    assert!(server.remote_dir("precious.txt").exists());

    let run = sync(tree.path(), &server.url(""), &["--delete", "--force"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(!server.remote_dir("precious.txt").exists());
}

#[test]
fn unsafe_remote_names_are_never_followed_or_deleted() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("ok.txt", "ok");
    for name in ["ctl\u{1}name", "back\\slash", "tab\tname"] {
        std::fs::create_dir_all(server.remote_dir(name)).unwrap();
        std::fs::write(server.remote_dir(name).join("inside"), "x").unwrap();
    }
    let run = sync(tree.path(), &server.url(""), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.summary["skipped_remote"].as_u64().unwrap() >= 2,
        "{run}"
    );
    for name in ["ctl\u{1}name", "back\\slash", "tab\tname"] {
        assert!(
            server.remote_dir(name).join("inside").exists(),
            "{name:?} was touched"
        );
    }
}

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

#[test]
fn sigkill_mid_sync_then_rerun_gives_an_exact_mirror_without_temp_files() {
    let server = FtpServer::start();
    let tree = Tree::new();
    for i in 0..120 {
        tree.write(
            &format!("d{}/f{i:03}.bin", i % 3),
            vec![i as u8; 1024 * 1024],
        );
    }
    let url = server.url("site");
    let args = [
        "-j".as_ref(),
        "4".as_ref(),
        tree.path().as_os_str(),
        url.as_ref(),
    ];
    let (mut child, _stdout) = support::spawn_until_first_upload(&args);
    child.kill().unwrap();
    child.wait().unwrap();

    let rerun = sync(tree.path(), &server.url("site"), &[]);
    assert_eq!(rerun.code, 0, "{rerun}");
    assert_mirror(tree.path(), &server.remote_dir("site"));
    assert_eq!(temp_files(&server.remote_dir("site")), Vec::<String>::new());
}
