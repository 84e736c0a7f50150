//! Safety rules that hold without any fault injected: atomic uploads and their leftovers,
//! delete limits, unsafe remote names, local problems, one run per target.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::faults::{Fault, FaultProxy};
use crate::support::{self, assert_mirror, isolate_env, sync, FtpServer, Tree};

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

// Regression: `rm -rf site/* && mkdir site/css` passed the empty-source guard (a folder counted
// as content) and --delete emptied the server.
#[test]
fn a_local_tree_of_empty_folders_counts_as_empty() {
    let server = FtpServer::start();
    std::fs::write(server.remote_dir("index.html"), "home").unwrap();
    let tree = Tree::new();
    tree.mkdir("css/fonts");
    let run = sync(tree.path(), &server.url(""), &["--delete"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("is empty"), "{run}");
    assert!(server.remote_dir("index.html").exists());
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

/// Starts `ftpsync -j 1 --timeout 60 LOCAL URL` with `env`, and waits (bounded) until the
/// proxy's fault at index 0 fired: the run is in the middle of its upload, holding its lock.
fn start_stalled_run(
    proxy: &FaultProxy,
    local: &Tree,
    url: &str,
    env: &[(&str, &std::path::Path)],
) -> std::process::Child {
    let mut first = Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    isolate_env(&mut first);
    for (name, value) in env {
        first.env(name, value);
    }
    let child = first
        .args(["-j", "1", "--timeout", "60"])
        .arg(local.path())
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.fired(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "the first run never reached its upload"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

// Regression: the lock was keyed on the URL's text; another spelling of the same folder got
// around it.
#[test]
fn one_run_per_remote_folder_however_the_url_is_written() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("a.txt", "a");
    let stall = Fault::StallOn {
        command: "STOR".into(),
        path: "".into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![stall]);
    let url = proxy.url(&server.url("locked"));
    let mut first = start_stalled_run(&proxy, &local, &url, &[]);
    let port = proxy.port;
    let (user, password) = server
        .url("")
        .trim_start_matches("ftp://")
        .split_once('@')
        .map(|(login, _)| {
            let (u, p) = login.split_once(':').unwrap();
            (u.to_string(), p.to_string())
        })
        .unwrap();
    let spellings = [
        format!("ftp://{user}:{password}@localhost:{port}/locked"),
        format!("ftp://{user}:{password}@127.0.0.1:{port}//locked"),
        format!("ftp://{user}:{password}@127.0.0.1:{port}/./locked/./"),
    ];
    for other in &spellings {
        let second = support::sync(local.path(), other, &[]);
        assert_eq!(second.code, 2, "{other}: {second}");
        assert!(
            second.stderr.contains("another ftpsync is already syncing"),
            "{other}: {second}"
        );
    }
    first.kill().unwrap();
    first.wait().unwrap();
}

// Regression: a second run (another machine, or another spelling) removed the first run's
// temporary file in the middle of its upload; the first then reported success and the server
// folder was empty.
#[test]
fn a_second_run_never_removes_the_temporary_file_of_a_live_one() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("big.bin", vec![7u8; 256 * 1024]);
    let hold = Fault::HoldTransferEnd {
        path: "big.bin".into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![hold]);
    let url = proxy.url(&server.url("site"));
    // Another machine: its own state folder, so no shared local lock.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut first = start_stalled_run(
        &proxy,
        &local,
        &url,
        &[("XDG_STATE_HOME", elsewhere.path())],
    );
    assert_eq!(temp_files(&server.remote_dir("site")).len(), 1);
    let other_local = Tree::new();
    other_local.write("big.bin", vec![7u8; 256 * 1024]);
    let second = support::sync(other_local.path(), &server.url("site"), &["--delete"]);
    assert_eq!(
        temp_files(&server.remote_dir("site")).len(),
        1,
        "the live upload's temporary file is still there: {second}"
    );
    assert!(
        second.stderr.contains("another ftpsync run alone"),
        "{second}"
    );
    proxy.release();
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_mirror(local.path(), &server.remote_dir("site"));
    assert_eq!(temp_files(&server.remote_dir("site")), Vec::<String>::new());
}

// Regression: a server reporting an endlessly nested tree (a symlink loop listed as a folder)
// was listed for ever under --delete.
#[test]
fn an_endlessly_nested_remote_tree_is_listed_to_a_depth_and_nothing_below_is_deleted() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.remote_dir("loop")).unwrap();
    std::fs::write(server.remote_dir("loop/real.txt"), "real").unwrap();
    let nested = Fault::ServeListing {
        command: "MLSD".into(),
        path: "loop".into(),
        listing: support::faults::Listing::Nested,
        times: usize::MAX,
    };
    // Listings over the control connection would bypass the fault.
    let no_stat = Fault::Reply {
        command: "STAT".into(),
        path: "".into(),
        reply: "502 Command not implemented".into(),
        times: usize::MAX,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![nested, no_stat]);
    let tree = Tree::new();
    tree.write("keep.txt", "k");
    let started = Instant::now();
    let run = sync(tree.path(), &proxy.url(&server.url("")), &["--delete"]);
    assert!(started.elapsed() < Duration::from_secs(60), "{run}");
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("deeper than 100 levels"), "{run}");
    assert!(proxy.fired(0) >= 99, "listed {} levels", proxy.fired(0));
    assert!(server.remote_dir("loop/real.txt").exists());
    assert!(server.remote_dir("loop").is_dir());
    assert!(server.remote_dir("keep.txt").exists());
}

#[test]
fn a_remote_folder_whose_listing_breaks_is_not_deleted() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.remote_dir("old")).unwrap();
    for i in 0..20 {
        std::fs::write(server.remote_dir(&format!("old/f{i:02}.txt")), "x").unwrap();
    }
    let cut = Fault::CutListing {
        command: "MLSD".into(),
        path: "old".into(),
        after_lines: 3,
        times: usize::MAX,
    };
    let no_stat = Fault::Reply {
        command: "STAT".into(),
        path: "".into(),
        reply: "502 Command not implemented".into(),
        times: usize::MAX,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![cut, no_stat]);
    let tree = Tree::new();
    tree.write("keep.txt", "k");
    let run = sync(tree.path(), &proxy.url(&server.url("")), &["--delete"]);
    assert!(proxy.fired(0) > 0, "{run}");
    assert_eq!(run.code, 1, "{run}");
    for i in 0..20 {
        assert!(
            server.remote_dir(&format!("old/f{i:02}.txt")).exists(),
            "{run}"
        );
    }
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
