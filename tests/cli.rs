//! The binary as scripts see it: exit codes, one-line errors, and passwords never shown.

mod support;

use support::{ftpsync, sync, FtpServer, Tree};

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn one_line_error(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{stderr}");
    assert!(lines[0].starts_with("ftpsync: "), "{stderr}");
    lines[0]
}

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
    assert!(stdout.contains("1 files uploaded"), "{stdout}");
}

#[test]
fn wrong_password_exits_2_without_showing_it() {
    let server = FtpServer::start_with_auth("alice", "right-password");
    let tree = Tree::new();
    tree.write("f", "x");
    let url = server.url_with("alice", Some("Wr0ng-S3cret-pw"), "");
    let out = ftpsync().arg(tree.path()).arg(&url).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert!(line.contains("login refused"), "{line}");
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains("Wr0ng-S3cret-pw"));
    }
    assert!(
        std::fs::read_dir(server.remote_dir(""))
            .unwrap()
            .next()
            .is_none(),
        "nothing uploaded"
    );
}

#[test]
fn password_is_never_printed_even_verbose() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("f", "x");
    let url = server.url_with("bob", Some("Pa55-word-visible!"), "dir");
    let out = ftpsync()
        .args(["-vv", "--json"])
        .arg(tree.path())
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains("Pa55-word-visible"),
            "password leaked:\n{text}"
        );
    }
}

#[test]
fn password_from_environment_and_file() {
    let server = FtpServer::start_with_auth("carol", "from-env-or-file");
    let tree = Tree::new();
    tree.write("f", "x");
    let url = server.url_with("carol", None, "");
    let out = ftpsync()
        .env("FTPSYNC_PASSWORD", "from-env-or-file")
        .arg(tree.path())
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw.txt");
    std::fs::write(&file, "from-env-or-file\n").unwrap();
    let out = ftpsync()
        .arg("--password-file")
        .arg(&file)
        .arg(tree.path())
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

#[test]
fn json_summary_is_one_object_on_stdout() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("a/b", "12345");
    let out = ftpsync()
        .arg("--json")
        .arg(tree.path())
        .arg(server.url(""))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["files_uploaded"], 1);
    assert_eq!(v["bytes_uploaded"], 5);
    assert_eq!(v["folders_created"], 1);
    assert_eq!(v["exit_code"], 0);
}
