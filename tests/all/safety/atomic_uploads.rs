//! Atomic uploads and their leftovers: every upload goes to a temporary name first (unless
//! `--inplace`); temporary files left by an interrupted run are removed, not counted, and only
//! reported by a dry run; a run killed mid-sync is completed by the next.

use crate::support::{self, assert_mirror, sync, FtpServer, Tree};

use super::temp_files;

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

// Regression: a dry run said "removing 1 temporary file(s)" (and removed nothing).
#[test]
fn a_dry_run_says_it_would_remove_leftover_temp_files_and_keeps_them() {
    let server = FtpServer::start();
    std::fs::write(server.remote_dir(".gone.bin.ftpsync-tmp"), "x").unwrap();
    let tree = Tree::new();
    tree.write("a.txt", "a");
    let run = sync(tree.path(), &server.url(""), &["--dry-run"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr
            .contains("would remove 1 temporary file(s) left by an interrupted run"),
        "{run}"
    );
    assert!(server.remote_dir(".gone.bin.ftpsync-tmp").exists());
}
