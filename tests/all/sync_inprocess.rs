//! End-to-end syncs against an in-process FTP server (libunftp, no MFMT: the upload record is
//! what keeps reruns from uploading again).

use crate::support::{self, assert_mirror, changed_files, snapshot, sync, FtpServer, Tree};

const T0: u64 = 1_600_000_000;

/// A tree with the awkward cases: binary bytes, CRLF, empty file and folder, spaces, non-ASCII,
/// a dot file, nesting.
fn awkward_tree() -> Tree {
    let tree = Tree::new();
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(256 * 40).collect();
    tree.write("bin/all-bytes.dat", &all_bytes);
    tree.write("text/crlf.txt", b"line one\r\nline two\r\n\nlone LF\n");
    tree.write("empty.txt", b"");
    tree.mkdir("empty folder");
    tree.write("with space/file name with  spaces.txt", b"spaces");
    tree.write(
        "non-ascii/h\u{e9}llo w\u{f6}rld \u{65e5}\u{672c}.txt",
        "unicode".as_bytes(),
    );
    tree.write(".htaccess", b"deny from all\n");
    tree.write("a/b/c/d/deep.txt", b"deep");
    tree.write("large.bin", vec![7u8; 3 * 1024 * 1024 + 17]);
    tree
}

#[test]
fn first_sync_mirrors_every_byte() {
    let server = FtpServer::start();
    let tree = awkward_tree();
    let run = sync(tree.path(), &server.url("site"), &["-j", "4"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir("site"));
    assert_eq!(run.summary["files_uploaded"], 8, "{run}");
    assert_eq!(run.summary["failed"], 0);
}

#[test]
fn rerun_without_changes_uploads_nothing() {
    let server = FtpServer::start();
    let tree = awkward_tree();
    assert_eq!(sync(tree.path(), &server.url("site"), &[]).code, 0);
    let before = snapshot(&server.remote_dir("site"));
    let run = sync(tree.path(), &server.url("site"), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_uploaded"], 0, "{run}");
    assert_eq!(run.summary["unchanged"], 8, "{run}");
    assert_eq!(
        changed_files(&before, &snapshot(&server.remote_dir("site"))),
        Vec::<String>::new()
    );
}

#[test]
fn only_changed_added_and_deleted_files_move() {
    let server = FtpServer::start();
    let tree = Tree::new();
    for i in 0..20 {
        tree.write(
            &format!("dir{}/file{i}.txt", i % 4),
            format!("content {i:03}"),
        );
    }
    for i in 0..20 {
        tree.set_mtime(&format!("dir{}/file{i}.txt", i % 4), T0);
    }
    assert_eq!(sync(tree.path(), &server.url(""), &[]).code, 0);
    let before = snapshot(&server.remote_dir(""));

    // Same size, new content and time; a new file; a deleted file.
    tree.write("dir1/file1.txt", "CONTENT 001");
    tree.set_mtime("dir1/file1.txt", T0 + 3600);
    tree.write("dir2/new.txt", "new");
    tree.remove("dir3/file3.txt");
    let run = sync(tree.path(), &server.url(""), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir(""));
    assert_eq!(
        changed_files(&before, &snapshot(&server.remote_dir(""))),
        ["dir1/file1.txt", "dir2/new.txt", "dir3/file3.txt"]
    );
    assert_eq!(run.summary["files_uploaded"], 2);
    assert_eq!(run.summary["deleted"], 1);
}

#[test]
fn same_size_edit_within_the_same_second_is_still_sent() {
    // Guards the record's nanosecond times: a second-resolution comparison would miss this.
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("f.txt", "aaaa");
    assert_eq!(sync(tree.path(), &server.url(""), &[]).code, 0);
    tree.write("f.txt", "bbbb");
    let run = sync(tree.path(), &server.url(""), &[]);
    assert_eq!(run.summary["files_uploaded"], 1, "{run}");
    assert_mirror(tree.path(), &server.remote_dir(""));
}

#[test]
fn dry_run_changes_nothing_on_the_server() {
    let server = FtpServer::start();
    let tree = awkward_tree();
    std::fs::create_dir_all(server.remote_dir("site/stale")).unwrap();
    std::fs::write(server.remote_dir("site/stale/old.txt"), "old").unwrap();
    let before = support::tree_digest(&server.remote_dir(""));
    let run = sync(tree.path(), &server.url("site"), &["--dry-run", "--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(support::tree_digest(&server.remote_dir("")), before);
    assert_eq!(
        run.summary["files_uploaded"], 8,
        "the plan is reported: {run}"
    );
    assert_eq!(run.summary["deleted"], 2, "{run}");
    assert!(
        run.stderr.contains("> bin/all-bytes.dat (10.0 KiB)"),
        "{run}"
    );
    assert!(run.stderr.contains("- stale/old.txt"), "{run}");
}

#[test]
fn one_and_sixteen_workers_give_the_same_mirror() {
    let tree = awkward_tree();
    for i in 0..60 {
        tree.write(&format!("many/{}/f{i}", i % 7), vec![i as u8; i * 100]);
    }
    let one = FtpServer::start();
    let sixteen = FtpServer::start();
    assert_eq!(sync(tree.path(), &one.url("m"), &["-j", "1"]).code, 0);
    let run = sync(tree.path(), &sixteen.url("m"), &["-j", "16"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &one.remote_dir("m"));
    assert_mirror(tree.path(), &sixteen.remote_dir("m"));
    assert!(
        sixteen.peak_connections() >= 8,
        "16 workers should use many connections"
    );
}

#[test]
fn type_changes_replace_files_with_folders_and_back() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("was-file", "file");
    tree.write("was-dir/inner/x.txt", "x");
    assert_eq!(sync(tree.path(), &server.url(""), &[]).code, 0);
    tree.remove("was-file");
    tree.write("was-file/now-inside.txt", "inside");
    tree.remove("was-dir");
    tree.write("was-dir", "now a file");
    // This server cannot set times, so what ftpsync put in was-dir cannot be told from
    // someone else's files: replacing the folder takes --delete (see safety/type_changes.rs).
    let run = sync(tree.path(), &server.url(""), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir(""));
}

#[test]
fn excluded_paths_are_neither_uploaded_nor_deleted() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("keep.txt", "k");
    tree.write("debug.log", "local log");
    tree.write("cache/blob", "c");
    tree.write("sub/tmp/t", "t");
    std::fs::write(server.remote_dir("server.log"), "remote log").unwrap();
    let run = sync(
        tree.path(),
        &server.url(""),
        &["--delete", "-x", "*.log", "-x", "cache/", "-x", "**/tmp"],
    );
    assert_eq!(run.code, 0, "{run}");
    let root = server.remote_dir("");
    assert!(root.join("keep.txt").exists());
    assert!(root.join("sub").is_dir());
    assert!(
        !root.join("debug.log").exists()
            && !root.join("cache").exists()
            && !root.join("sub/tmp").exists()
    );
    assert_eq!(
        std::fs::read_to_string(root.join("server.log")).unwrap(),
        "remote log"
    );
}

#[test]
fn max_depth_limits_what_is_mirrored() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("top.txt", "1");
    tree.write("a/second.txt", "2");
    tree.write("a/b/third.txt", "3");
    let run = sync(tree.path(), &server.url(""), &["--max-depth", "2"]);
    assert_eq!(run.code, 0, "{run}");
    let root = server.remote_dir("");
    assert!(root.join("a/second.txt").exists());
    assert!(root.join("a/b").is_dir());
    assert!(!root.join("a/b/third.txt").exists());
}

#[test]
fn missing_remote_parents_are_created() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("f", "x");
    let run = sync(tree.path(), &server.url("one/two/three"), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir("one/two/three"));
}

#[test]
fn local_tree_is_never_modified() {
    let server = FtpServer::start();
    let tree = awkward_tree();
    std::fs::write(server.remote_dir("extra.txt"), "remote only").unwrap();
    let before = support::tree_digest(tree.path());
    assert_eq!(sync(tree.path(), &server.url(""), &["--delete"]).code, 0);
    assert_eq!(support::tree_digest(tree.path()), before);
}

#[test]
fn a_missing_remote_folder_is_created_and_said_once_not_counted_as_a_change() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("sub/a.txt", "a");
    let dry = sync(tree.path(), &server.url("www"), &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(
        dry.stderr
            .contains("remote folder www does not exist yet; a real run creates it"),
        "{dry}"
    );
    let run = sync(tree.path(), &server.url("www"), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("created remote folder www"), "{run}");
    assert!(!run.stderr.contains("+ ./"), "{run}");
    assert_eq!(run.summary["folders_created"], 1, "only sub/: {run}");
    assert_mirror(tree.path(), &server.remote_dir("www"));
}

#[test]
fn an_exclude_file_reads_as_gitignore_and_includes_keep_what_they_match() {
    let server = FtpServer::start();
    let tree = Tree::new();
    for name in [
        "a.log",
        "keep.log",
        "sub/b.log",
        "sub/keep.log",
        "page.html",
        "x.tmp",
    ] {
        tree.write(name, name);
    }
    let dir = tempfile::tempdir().unwrap();
    let ignore_file = dir.path().join("ignore");
    std::fs::write(&ignore_file, "# logs, but one\n*.log\n!keep.log\n").unwrap();
    let run = sync(
        tree.path(),
        &server.url("site"),
        &[
            "--exclude-from",
            ignore_file.to_str().unwrap(),
            "--exclude",
            "*.tmp",
            "--include",
            "sub/b.log",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let remote = server.remote_dir("site");
    for kept in ["keep.log", "sub/keep.log", "sub/b.log", "page.html"] {
        assert!(remote.join(kept).exists(), "{kept} left out: {run}");
    }
    for left_out in ["a.log", "x.tmp"] {
        assert!(
            !remote.join(left_out).exists(),
            "{left_out} uploaded: {run}"
        );
    }
}

#[test]
fn gitignore_leaves_out_what_git_would_and_keeps_it_on_the_server() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write(".gitignore", "*.log\nnode_modules/\n");
    tree.write("app/.gitignore", "!keep.log\n");
    for name in [
        "index.html",
        "a.log",
        "app/keep.log",
        "app/b.log",
        "node_modules/x.js",
    ] {
        tree.write(name, name);
    }
    tree.write(".git/HEAD", "ref: refs/heads/main");
    // Already on the server, now ignored: kept even with --delete.
    std::fs::create_dir_all(server.remote_dir("site")).unwrap();
    std::fs::write(server.remote_dir("site/old.log"), "old").unwrap();
    let run = sync(
        tree.path(),
        &server.url("site"),
        &["--gitignore", "--delete"],
    );
    assert_eq!(run.code, 0, "{run}");
    let remote = server.remote_dir("site");
    for kept in [
        "index.html",
        ".gitignore",
        "app/.gitignore",
        "app/keep.log",
        "old.log",
    ] {
        assert!(remote.join(kept).exists(), "{kept} missing: {run}");
    }
    for left_out in ["a.log", "app/b.log", "node_modules", ".git"] {
        assert!(
            !remote.join(left_out).exists(),
            "{left_out} uploaded: {run}"
        );
    }
}
