//! `--log-file`: the log, the change lines and the summary appended to a file with timestamps,
//! whatever `-q` keeps off the terminal; an unwritable file is a one-line error, exit 2.

use crate::support::{ftpsync, FtpServer, Tree};

use super::one_line_error;

#[test]
fn the_log_file_gets_each_change_and_the_summary_and_grows_run_after_run() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("a.txt", "a");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ftpsync.log");
    let run = |extra: &[&str]| {
        ftpsync()
            .args(["-q", "--log-file"])
            .arg(&log)
            .args(extra)
            .arg(tree.path())
            .arg(server.url("site"))
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert_eq!(first.status.code(), Some(0));
    assert!(
        first.stdout.is_empty() && first.stderr.is_empty(),
        "-q prints nothing"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let upload = text.lines().find(|l| l.ends_with("> a.txt (1 B)"));
    let upload = upload.unwrap_or_else(|| panic!("no change line:\n{text}"));
    assert!(
        upload.starts_with("20") && upload.contains('T'),
        "not timestamped: {upload}"
    );
    assert!(text.contains("1 file uploaded"), "{text}");
    let lines = text.lines().count();
    tree.write("b.txt", "b");
    assert_eq!(run(&[]).status.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > lines, "appended to:\n{text}");
    assert!(text.contains("> b.txt (1 B)"), "{text}");
}

#[test]
fn a_log_file_that_cannot_be_opened_exits_2_naming_it() {
    let tree = Tree::new();
    let out = ftpsync()
        .args(["--log-file", "/nonexistent-folder/ftpsync.log"])
        .arg(tree.path())
        .arg("ftp://127.0.0.1:1/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert!(
        line.contains("cannot open --log-file /nonexistent-folder/ftpsync.log"),
        "{line}"
    );
}
