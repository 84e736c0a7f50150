//! A local file where the server has a folder: a conflict unless `--delete` (or the listing
//! proves ftpsync put the folder there), never a half-emptied folder, and its deletions count
//! toward `--max-delete`.

use crate::support::{self, assert_mirror, sync, FtpServer, Tree};

/// A remote folder `x` holding a file that only ever existed on the server.
fn server_folder_x(server: &FtpServer) {
    std::fs::create_dir_all(server.remote_dir("x/sub")).unwrap();
    std::fs::write(server.remote_dir("x/server-only.txt"), "theirs").unwrap();
    std::fs::write(server.remote_dir("x/sub/deep.txt"), "theirs too").unwrap();
}

// Regression: without --delete, a local file replacing a remote folder deleted the folder's
// whole subtree, server-only files included, with exit 0 (even under --max-delete 0).
#[test]
fn a_local_file_in_place_of_a_remote_folder_is_a_conflict_without_delete() {
    let server = FtpServer::start();
    server_folder_x(&server);
    let tree = Tree::new();
    tree.write("x", "now a file");
    tree.write("other.txt", "other");
    for extra in [&[][..], &["--max-delete", "0"][..]] {
        let run = sync(tree.path(), &server.url(""), extra);
        assert_eq!(run.code, 1, "{run}");
        assert!(
            run.stderr
                .contains("3 entries not in the local tree; use --delete to replace it"),
            "{run}"
        );
        assert_eq!(run.summary["deleted"], 0, "{run}");
        assert!(server.remote_dir("x/server-only.txt").exists());
        assert!(server.remote_dir("x/sub/deep.txt").exists());
        assert!(server.remote_dir("other.txt").exists(), "the rest is done");
    }
}

// Regression: with --delete the folder's content was planned twice; the second DELE got 550
// and the run exited 1 although the mirror was exact.
#[test]
fn a_local_file_in_place_of_a_remote_folder_replaces_it_with_delete() {
    let server = FtpServer::start();
    server_folder_x(&server);
    let tree = Tree::new();
    tree.write("x", "now a file");
    let run = sync(tree.path(), &server.url(""), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["failed"], 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir(""));
}

/// The in-process server and every real one, each with a fresh folder `name`.
fn all_servers(server: &FtpServer, name: &str) -> Vec<(&'static str, String, std::path::PathBuf)> {
    let mut ups = vec![("libunftp", server.url(name), server.remote_dir(name))];
    for real in support::real_servers() {
        let (url, dir) = real.scratch(name);
        ups.push((real.name, url, dir));
    }
    ups
}

#[test]
fn a_folder_ftpsync_uploaded_becomes_a_file_only_where_the_listing_proves_it_is_ours() {
    // A folder is replaced without --delete only when the listing shows, to the second, the
    // times ftpsync set; the in-process server cannot set times, and minute-precise listings
    // (LIST, STAT) cannot prove it: there it is a conflict, and --delete replaces it.
    let server = FtpServer::start();
    for (name, url, dir) in all_servers(&server, "typechange") {
        let tree = Tree::new();
        tree.write("x/a.txt", "a");
        tree.write("x/sub/b.txt", "b");
        tree.set_mtime("x/a.txt", 1_600_000_000);
        tree.set_mtime("x/sub/b.txt", 1_600_000_000);
        let run = sync(tree.path(), &url, &[]);
        assert_eq!(run.code, 0, "{name}: {run}");
        tree.remove("x");
        tree.write("x", "now a file");
        let run = sync(tree.path(), &url, &[]);
        if run.code != 0 {
            assert_eq!(run.code, 1, "{name}: {run}");
            assert!(
                run.stderr.contains("use --delete to replace it"),
                "{name}: {run}"
            );
            assert!(dir.join("x/a.txt").exists(), "{name}");
            let run = sync(tree.path(), &url, &["--delete"]);
            assert_eq!(run.code, 0, "{name}: {run}");
        }
        assert_mirror(tree.path(), &dir);
    }
}

// Regression: a file rewritten on the server with the same size, within the minute a LIST or
// STAT listing shows, was taken for ftpsync's own and deleted with its folder.
#[test]
fn a_same_size_rewrite_on_the_server_keeps_its_folder_from_being_replaced() {
    let server = FtpServer::start();
    for (name, url, dir) in all_servers(&server, "rewritten-in-folder") {
        let tree = Tree::new();
        tree.write("d/x.txt", "one");
        tree.set_mtime("d/x.txt", 1_600_000_000);
        let run = sync(tree.path(), &url, &[]);
        assert_eq!(run.code, 0, "{name}: {run}");
        std::fs::write(dir.join("d/x.txt"), "TWO").unwrap();
        tree.remove("d");
        tree.write("d", "now a file");
        let run = sync(tree.path(), &url, &[]);
        assert_eq!(run.code, 1, "{name}: {run}");
        assert_eq!(
            std::fs::read_to_string(dir.join("d/x.txt")).unwrap(),
            "TWO",
            "{name}: {run}"
        );
    }
}

// Regression: excluded remote entries were left out of the listing, so a folder holding one
// was half emptied before its removal failed.
#[test]
fn a_remote_folder_holding_an_excluded_file_is_not_half_emptied() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.remote_dir("d")).unwrap();
    std::fs::write(server.remote_dir("d/a.txt"), "a").unwrap();
    std::fs::write(server.remote_dir("d/keep.log"), "log").unwrap();
    let tree = Tree::new();
    tree.write("d", "now a file");
    let run = sync(tree.path(), &server.url(""), &["--delete", "-x", "*.log"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("excluded"), "{run}");
    assert!(server.remote_dir("d/a.txt").exists(), "{run}");
    assert!(server.remote_dir("d/keep.log").exists(), "{run}");
}

#[test]
fn deletions_made_by_a_type_change_count_toward_max_delete() {
    let server = FtpServer::start();
    server_folder_x(&server);
    let tree = Tree::new();
    tree.write("x", "now a file");
    let run = sync(
        tree.path(),
        &server.url(""),
        &["--delete", "--max-delete", "3"],
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("refusing to delete 4 remote entries"),
        "{run}"
    );
    assert!(server.remote_dir("x/server-only.txt").exists());
    assert!(server.remote_dir("x/sub/deep.txt").exists());
}
