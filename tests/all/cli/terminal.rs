//! Untrusted text on the terminal: a hostile server reply or a local file name with control
//! characters reaches stderr (and the debug log) escaped, on one line.

use crate::support::{ftpsync, FtpServer, Tree};

use super::{one_line_error, refusing_server, HOSTILE_REPLY};

/// Bytes that would drive a terminal: ESC, BEL, NUL, CR, and every other control but LF.
fn terminal_controls(output: &[u8]) -> Vec<u8> {
    let controls = output
        .iter()
        .filter(|&&b| (b < 0x20 && b != b'\n') || b == 0x7f);
    controls.copied().collect()
}

#[test]
fn a_hostile_login_reply_reaches_stderr_escaped_on_one_line() {
    let port = refusing_server(HOSTILE_REPLY);
    let tree = Tree::new();
    let url = format!("ftp://u:p@127.0.0.1:{port}/");
    let out = ftpsync().arg(tree.path()).arg(&url).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        terminal_controls(&out.stderr),
        b"",
        "raw control bytes on stderr"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert!(line.contains(r"\x1b]0;pwned\x07\x1b[2J bad\0"), "{line}");
}

#[test]
fn a_hostile_login_reply_is_escaped_in_the_debug_log_too() {
    let port = refusing_server(HOSTILE_REPLY);
    let tree = Tree::new();
    let url = format!("ftp://u:p@127.0.0.1:{port}/");
    let out = ftpsync()
        .arg("-vv")
        .arg(tree.path())
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(terminal_controls(&out.stderr), b"", "{stderr}");
    assert!(stderr.lines().count() > 1, "expected log lines:\n{stderr}");
}

#[test]
fn a_local_name_with_a_newline_is_shown_on_one_line() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("two\nlines\x1b[31m.txt", "x");
    let out = ftpsync()
        .arg(tree.path())
        .arg(server.url(""))
        .output()
        .unwrap();
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    for stream in [stdout, stderr] {
        let text = String::from_utf8_lossy(stream);
        assert_eq!(terminal_controls(stream), b"", "{text}");
        assert!(!text.contains("two\n"), "{text}");
    }
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    assert!(all.contains(r"two\nlines\x1b[31m.txt"), "{all}");
}
