//! What keeps a pull from harming LOCAL_DIR when something else is going on: another run
//! writing into it, ftpsync-looking names that are the user's, a server sending too much.

use super::pull;
use crate::support::faults::{Fault, FaultProxy, Listing};
use crate::support::{FtpServer, Tree};

/// An in-process server whose folder `site` holds `files` (path, text).
fn site_with(files: &[(&str, &str)]) -> FtpServer {
    let server = FtpServer::start();
    for (rel, text) in files {
        let path = server.remote_dir(&format!("site/{rel}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    server
}

#[test]
fn a_pull_into_a_folder_another_run_holds_is_refused_even_from_another_state_folder() {
    let server = site_with(&[("f.txt", "remote")]);
    let local = Tree::new();
    local.write("f.txt", "mine");
    // Another run's lock: on the folder itself (flock), as every pull takes it.
    let held = std::fs::File::open(local.path()).unwrap();
    held.try_lock().unwrap();
    // Its state folder is not this one's: the lock on the folder itself tells.
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("another ftpsync"), "{run}");
    assert_eq!(
        std::fs::read_to_string(local.join("f.txt")).unwrap(),
        "mine"
    );
    drop(held);
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
}

#[test]
fn pulls_into_nested_folders_exclude_each_other_and_side_by_side_ones_do_not() {
    let server = site_with(&[("f.txt", "remote")]);
    let local = Tree::new();
    local.write("outer/inner/f.txt", "mine");
    let mine = || std::fs::read_to_string(local.join("outer/inner/f.txt")).unwrap();
    // A pull into `outer` holds it (exclusively): none may write into a folder inside it.
    let outer = std::fs::File::open(local.join("outer")).unwrap();
    outer.try_lock().unwrap();
    let run = pull(&server.url("site"), &local.join("outer/inner"), &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("is pulling into"), "{run}");
    assert_eq!(mine(), "mine");
    drop(outer);
    // A pull into `outer/inner` holds the folders above it (shared): none may write into them.
    let above_inner = std::fs::File::open(local.join("outer")).unwrap();
    above_inner.try_lock_shared().unwrap();
    let run = pull(&server.url("site"), &local.join("outer"), &["--delete"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("is pulling into"), "{run}");
    assert_eq!(mine(), "mine");
    // A pull into a folder beside it is not in its way.
    let run = pull(&server.url("site"), &local.join("outer/beside"), &[]);
    assert_eq!(run.code, 0, "{run}");
}

#[test]
fn a_users_file_named_like_a_temporary_one_is_an_ordinary_file() {
    let server = site_with(&[("notes/a.txt", "a")]);
    let local = Tree::new();
    local.write("notes/.draft.v2.ftpsync-tmp", "my draft");
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
    let kept = std::fs::read_to_string(local.join("notes/.draft.v2.ftpsync-tmp"));
    assert_eq!(kept.unwrap(), "my draft");
    // Not on the server: with --delete, an extraneous file like any other.
    let run = pull(&server.url("site"), local.path(), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["deleted"], 1, "{run}");
    assert!(!local.join("notes/.draft.v2.ftpsync-tmp").exists());
}

#[test]
fn a_server_sending_more_than_its_listing_said_is_cut_off() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.remote_dir("site")).unwrap();
    std::fs::write(server.remote_dir("site/big.bin"), vec![7u8; 4 << 20]).unwrap();
    // The listing says 1 byte; RETR sends the 4 MiB.
    let listing = Fault::ServeListing {
        command: String::new(),
        path: String::new(),
        listing: Listing::Names(&["big.bin"]),
        times: usize::MAX,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![listing]);
    let local = Tree::new();
    let run = pull(&proxy.url(&server.url("site")), local.path(), &[]);
    assert_eq!(run.code, 1, "{run}");
    let said = "server sent more than the 1 bytes its listing announced";
    assert!(run.stderr.contains(said), "{run}");
    let left: Vec<_> = std::fs::read_dir(local.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "nothing put in place, no temporary file left"
    );
}

#[test]
fn a_local_link_at_a_files_name_is_said_to_be_replaced() {
    let server = site_with(&[("f.txt", "remote")]);
    let local = Tree::new();
    let outside = Tree::new();
    outside.write("target.txt", "theirs");
    std::os::unix::fs::symlink(outside.join("target.txt"), local.join("f.txt")).unwrap();
    let run = pull(&server.url("site"), local.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr
            .contains("f.txt: symbolic link; replaced by the remote file"),
        "{run}"
    );
    assert!(!run.stderr.contains("skipped"), "{run}");
    assert_eq!(
        std::fs::read_to_string(local.join("f.txt")).unwrap(),
        "remote"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("target.txt")).unwrap(),
        "theirs"
    );
}

#[test]
fn a_pull_that_cannot_list_the_server_creates_no_local_folder() {
    let server = FtpServer::start();
    let parent = Tree::new();
    let dest = parent.join("backup");
    // Nothing listens on the port of a server that is gone.
    let url = server.url("site");
    drop(server);
    let run = pull(&url, &dest, &["--retries", "1"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(!dest.exists(), "{run}");

    let server = site_with(&[("f.txt", "remote")]);
    let run = pull(&server.url("site"), &dest, &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(dest.join("f.txt").exists());
}
