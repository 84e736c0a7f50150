//! Passwords: never shown, even with `-vv`; read from `$FTPSYNC_PASSWORD`, `--password-file`
//! (which wins over the environment) or `~/.netrc`; a password file that never ends refused at
//! once; a `.netrc` others can read refused, a password file others can read warned about; a
//! named user without any password refused before connecting.

use crate::support::{ftpsync, FtpServer, Tree};

use super::one_line_error;

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
fn a_named_user_without_any_password_exits_2_before_connecting() {
    let server = FtpServer::start_with_auth("alice", "right-password");
    let tree = Tree::new();
    tree.write("f", "x");
    let url = server.url_with("alice", None, "");
    let out = ftpsync().arg(tree.path()).arg(&url).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert!(line.contains("no password for alice@"), "{line}");
    assert!(
        line.contains("--password-file, FTPSYNC_PASSWORD or ~/.netrc"),
        "{line}"
    );
    assert_eq!(server.connections(), 0, "an empty PASS was sent");
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
fn a_password_file_that_never_ends_is_refused_at_once() {
    let out = ftpsync()
        .args([
            "--password-file",
            "/dev/zero",
            ".",
            "ftp://bob@127.0.0.1:1/",
        ])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(one_line_error(&stderr).contains("64 KiB"), "{stderr}");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_netrc_other_users_can_read_is_refused_with_the_fix() {
    let server = FtpServer::start_with_auth("alice", "netrc-pw");
    let tree = Tree::new();
    tree.write("f", "x");
    let home = tempfile::tempdir().unwrap();
    let netrc = home.path().join(".netrc");
    std::fs::write(&netrc, "machine 127.0.0.1 login alice password netrc-pw\n").unwrap();
    set_mode(&netrc, 0o644);
    let url = server.url_with("alice", None, "");
    let run = |home: &std::path::Path| {
        let mut cmd = ftpsync();
        cmd.env("HOME", home).arg(tree.path()).arg(&url);
        cmd.output().unwrap()
    };
    let out = run(home.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert!(
        line.ends_with(&format!("chmod 600 {}", netrc.display())),
        "{line}"
    );
    assert!(!line.contains("netrc-pw"), "{line}");
    set_mode(&netrc, 0o600);
    let out = run(home.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn a_password_file_other_users_can_read_gets_a_warning_only() {
    let server = FtpServer::start_with_auth("carol", "file-pw");
    let tree = Tree::new();
    tree.write("f", "x");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "file-pw\n").unwrap();
    let url = server.url_with("carol", None, "");
    let run = |mode| {
        set_mode(&file, mode);
        let mut cmd = ftpsync();
        cmd.arg("--password-file")
            .arg(&file)
            .arg(tree.path())
            .arg(&url);
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        stderr
    };
    let warned = run(0o644);
    assert!(warned.contains("can be read by other users"), "{warned}");
    assert!(
        warned.contains(&format!("chmod 600 {}", file.display())),
        "{warned}"
    );
    let quiet = run(0o600);
    assert!(!quiet.contains("other users"), "{quiet}");
}

// Regression: $FTPSYNC_PASSWORD (left in the environment) beat an explicit --password-file.
#[test]
fn a_password_file_given_on_the_command_line_beats_the_environment() {
    let server = FtpServer::start_with_auth("carol", "from-the-file");
    let tree = Tree::new();
    tree.write("f", "x");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "from-the-file\n").unwrap();
    let out = ftpsync()
        .env("FTPSYNC_PASSWORD", "stale-from-the-environment")
        .arg("--password-file")
        .arg(&file)
        .arg(tree.path())
        .arg(server.url_with("carol", None, ""))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
