//! `--json`: the summary is one object on stdout, and a run that fails (bad command line,
//! unreachable server, refused login, failed cycle, second signal) still prints exactly one
//! JSON object, with `exit_code` and `error`.

use crate::support::{self, ftpsync, FtpServer, Tree};

use super::{closed_port, refusing_server, HOSTILE_REPLY};

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
    assert_eq!(v["version"], 2);
}

#[test]
fn json_lists_the_changes_in_the_same_order_dry_or_not() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("a/b.txt", "12345");
    tree.write("c.txt", "1");
    let first = support::sync(tree.path(), &server.url("site"), &[]);
    assert_eq!(first.code, 0, "{first}");
    tree.remove("a");
    tree.write("d/e.txt", "xy");
    let dry = support::sync(tree.path(), &server.url("site"), &["--delete", "--dry-run"]);
    let real = support::sync(tree.path(), &server.url("site"), &["--delete"]);
    assert_eq!(real.code, 0, "{real}");
    let expected = serde_json::json!([
        {"action": "delete", "path": "a/"},
        {"action": "delete", "path": "a/b.txt"},
        {"action": "mkdir", "path": "d/"},
        {"action": "upload", "path": "d/e.txt", "bytes": 2},
    ]);
    assert_eq!(real.summary["changes"], expected, "{real}");
    assert_eq!(dry.summary["changes"], expected, "{dry}");
}

#[test]
fn a_second_signal_with_json_still_prints_one_json_object() {
    use crate::support::faults::{Fault, FaultProxy};
    use std::io::{BufRead, Read};
    let server = FtpServer::start();
    let stall = Fault::StallOn {
        command: "STOR".into(),
        path: "".into(),
        times: usize::MAX,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![stall]);
    let tree = Tree::new();
    tree.write("a.txt", "a");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut cmd);
    let mut child = cmd
        .args(["--json", "-j", "1", "--timeout", "60"])
        .arg(tree.path())
        .arg(proxy.url(&server.url("")))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the upload is stuck: the first signal then lets it go on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while proxy.fired(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never reached its upload"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill")
            .args([name, &pid])
            .status();
        assert!(sent.unwrap().success());
    };
    signal("-INT");
    // The second signal only once the first one has been handled.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("stopping: transfers in progress get") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ended early");
    }
    signal("-TERM");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{rest}");
    let error = json_error(&out.stdout);
    assert_eq!(error["exit_code"], 130, "{error}");
    assert_eq!(error["error"], "aborted", "{error}");
}

/// stdout of a `--json` run that failed: exactly one JSON object.
fn json_error(stdout: &[u8]) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON line expected:\n{stdout}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn json_mode_prints_an_error_object_when_nothing_could_be_done() {
    let tree = Tree::new();
    let url = format!("ftp://u:p@127.0.0.1:{}/x", closed_port());
    let out = ftpsync()
        .args(["--json", "--timeout", "5"])
        .arg(tree.path())
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = json_error(&out.stdout);
    assert_eq!(error["exit_code"], 2);
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("cannot reach 127.0.0.1"), "{message}");
}

#[test]
fn json_mode_prints_an_error_object_for_a_bad_command_line() {
    let out = ftpsync()
        .args(["--json", "-j", "0", ".", "ftp://h/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = json_error(&out.stdout);
    assert_eq!(error["exit_code"], 2);
    assert!(
        error["error"].as_str().unwrap().contains("--jobs"),
        "{error}"
    );
}

#[test]
fn json_mode_keeps_the_hostile_reply_in_valid_json() {
    let port = refusing_server(HOSTILE_REPLY);
    let tree = Tree::new();
    let url = format!("ftp://u:p@127.0.0.1:{port}/");
    let out = ftpsync()
        .arg("--json")
        .arg(tree.path())
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = json_error(&out.stdout);
    assert!(
        error["error"].as_str().unwrap().contains("\x1b]0;pwned"),
        "{error}"
    );
}

#[test]
fn json_mode_prints_an_error_object_when_a_periodic_login_is_refused() {
    let port = refusing_server(b"530 go away\r\n");
    let tree = Tree::new();
    let url = format!("ftp://u:p@127.0.0.1:{port}/");
    let out = ftpsync()
        .args(["--json", "--every", "1m"])
        .arg(tree.path())
        .arg(&url)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = json_error(&out.stdout);
    assert_eq!(error["exit_code"], 2);
    assert!(
        error["error"].as_str().unwrap().contains("go away"),
        "{error}"
    );
}

#[test]
fn json_mode_prints_an_error_object_for_each_failed_cycle() {
    use std::io::BufRead;
    let tree = Tree::new();
    let url = format!("ftp://u:p@127.0.0.1:{}/x", closed_port());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut cmd);
    let mut child = cmd
        .args(["--json", "--every", "1s", "--timeout", "5"])
        .arg(tree.path())
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(60));
    let second = rx.recv_timeout(std::time::Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    for (n, line) in [(1, first), (2, second)] {
        let line = line.expect("a line for each failed cycle");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["cycle"], n, "{line}");
        assert!(
            value["error"].as_str().unwrap().contains("cannot reach"),
            "{line}"
        );
    }
}
