//! Delete limits and what is never deleted: `--max-delete`, an empty local folder (or one of
//! empty folders) needing `--force`, remote names that are unsafe, a remote tree nested without
//! end, and a remote folder whose listing breaks.

use std::time::{Duration, Instant};

use crate::support::faults::{renamed_in_case_only, Fault, FaultProxy};
use crate::support::{self, assert_mirror, sync, FtpServer, Tree};

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

#[test]
fn excluded_remote_paths_stay_unless_delete_excluded_asks() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("page.html", "page");
    tree.write(".env", "SECRET=1");
    tree.write("cache/a.bin", "a");
    let first = sync(tree.path(), &server.url("site"), &[]);
    assert_eq!(first.code, 0, "{first}");
    let excludes = ["--exclude", ".env", "--exclude", "cache/", "--delete"];
    let kept = sync(tree.path(), &server.url("site"), &excludes);
    assert_eq!(kept.code, 0, "{kept}");
    assert!(
        server.remote_dir("site/.env").exists(),
        "excluded, so kept: {kept}"
    );
    assert!(server.remote_dir("site/cache/a.bin").exists(), "{kept}");
    let gone = sync(
        tree.path(),
        &server.url("site"),
        &[&excludes[..], &["--delete-excluded"]].concat(),
    );
    assert_eq!(gone.code, 0, "{gone}");
    assert!(!server.remote_dir("site/.env").exists(), "{gone}");
    assert!(!server.remote_dir("site/cache").exists(), "{gone}");
    assert!(server.remote_dir("site/page.html").exists(), "{gone}");
    assert_eq!(gone.summary["deleted"], 3, "{gone}");
    assert!(
        tree.join(".env").exists(),
        "the local side is never touched"
    );
}

// On a server that ignores case (IIS, FileZilla Server), `index.html` renamed `Index.html`
// locally is uploaded over the old file; deleting `index.html` then would delete the new page.
#[test]
fn a_remote_name_differing_only_in_case_from_a_local_one_is_not_deleted() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("index.html", "home");
    let url = server.url("www");
    assert_eq!(sync(tree.path(), &url, &[]).code, 0);
    let proxy = renamed_in_case_only(&server.addr(), &tree);
    let run = sync(tree.path(), &proxy.url(&url), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(proxy.fired(0) > 0, "{run}");
    let live = std::fs::read_to_string(server.remote_dir("www/index.html")).unwrap();
    assert_eq!(live, "new home, longer", "{run}");
    assert_eq!(run.summary["deleted"], 0, "{run}");
    assert!(
        run.stderr
            .contains("index.html: not deleted: it differs only in case from the local Index.html"),
        "{run}"
    );
}
