//! Exit codes: 0 when everything is mirrored, 1 when some items failed, 2 when nothing could be
//! done (unreachable host, missing folder, malformed URL, bad usage), as `--help` documents.

use crate::support::{ftpsync, sync, FtpServer, Tree};

use super::{closed_port, one_line_error};

#[test]
fn success_exits_0() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("f", "x");
    let out = ftpsync()
        .arg(tree.path())
        .arg(server.url(""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("> f (1 B)"), "{stdout}");
    assert!(stdout.contains("1 file uploaded"), "{stdout}");
}

#[test]
fn unreachable_host_exits_2_quickly() {
    let tree = Tree::new();
    let url = format!("ftp://u:p@127.0.0.1:{}/x", closed_port());
    let out = ftpsync()
        .args(["--timeout", "5"])
        .arg(tree.path())
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        one_line_error(&stderr).contains("cannot reach 127.0.0.1"),
        "{stderr}"
    );
}

#[test]
fn missing_local_folder_exits_2() {
    let server = FtpServer::start();
    let out = ftpsync()
        .arg("/no/such/folder")
        .arg(server.url(""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        one_line_error(&stderr).contains("/no/such/folder does not exist"),
        "{stderr}"
    );
}

#[test]
fn malformed_urls_exit_2_with_the_fix() {
    let tree = Tree::new();
    for url in [
        "http://host/x",
        "ftp://",
        "ftp://host:99999/x",
        "ftp://user:secretpw@host/../x",
    ] {
        let out = ftpsync().arg(tree.path()).arg(url).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        one_line_error(&stderr);
        assert!(!stderr.contains("secretpw"), "{stderr}");
    }
}

#[test]
fn bad_usage_exits_2() {
    let out = ftpsync()
        .args(["-j", "0", ".", "ftp://h/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_the_exit_codes() {
    let out = ftpsync().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "0    everything mirrored",
        "1    finished, but some items failed",
        "2    nothing done",
        "130  interrupted",
    ] {
        assert!(help.contains(line), "missing {line:?} in --help");
    }
}

#[test]
fn an_item_that_cannot_be_mirrored_exits_1_and_the_rest_is_done() {
    use std::os::unix::ffi::OsStrExt;
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("good.txt", "fine");
    let bad = tree
        .path()
        .join(std::ffi::OsStr::from_bytes(b"bad-\xff-name.txt"));
    std::fs::write(&bad, "x").unwrap();
    let run = sync(tree.path(), &server.url(""), &[]);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.summary["failed"], 1);
    assert!(run.summary["failures"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not valid UTF-8"));
    assert_eq!(
        std::fs::read_to_string(server.remote_dir("good.txt")).unwrap(),
        "fine"
    );
}
