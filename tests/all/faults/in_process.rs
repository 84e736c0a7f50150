//! Faults whose handling does not depend on the server, on the in-process one only: a second
//! run while the first holds the lock, a size check that fails, a `500 OOPS`, a multi-line
//! refusal full of escape sequences.

use crate::support::faults::{Fault, FaultProxy};
use crate::support::{self, assert_mirror, run, FtpServer, Tree};

use super::{sync_through, tree, Upstream};

#[test]
fn a_second_run_on_the_same_target_exits_2_while_the_first_holds_the_lock() {
    let server = FtpServer::start();
    let local = tree();
    let proxy = FaultProxy::start(
        &server.addr(),
        vec![Fault::StallOn {
            command: "STOR".into(),
            path: "".into(),
            times: 1,
        }],
    );
    let url = proxy.url(&server.url("locked"));
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut first);
    let mut first = first
        .args(["-j", "1", "--timeout", "60"])
        .arg(local.path())
        .arg(&url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the first run is stuck in its upload, holding the lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while proxy.fired(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never reached its upload"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut second = support::ftpsync();
    let second = run(second.arg("--json").arg(local.path()).arg(&url));
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.code, 2, "{second}");
    assert!(
        second.stderr.contains("another ftpsync is already syncing"),
        "{second}"
    );
}

#[test]
fn a_failed_size_check_makes_as_many_stors_as_retries_and_says_what_it_is() {
    let server = FtpServer::start();
    let faults = vec![Fault::Reply {
        command: "SIZE".into(),
        path: "a.txt".into(),
        reply: "213 3".into(),
        times: usize::MAX,
    }];
    let proxy = FaultProxy::start(&server.addr(), faults);
    let local = Tree::new();
    local.write("a.txt", "hello");
    let up = Upstream {
        name: "libunftp",
        addr: server.addr(),
        url: server.url("size"),
        dir: server.remote_dir("size"),
        _server: None,
    };
    let run = sync_through(&proxy, &up, &local, &["--retries", "2"]);
    assert_eq!(run.code, 1, "{run}");
    let stors = proxy
        .commands()
        .iter()
        .filter(|c| c.starts_with("STOR") && c.contains("a.txt"))
        .count();
    assert_eq!(stors, 2, "--retries 2: {:?}", proxy.commands());
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("the server stored 3 bytes of 5 (size check after upload)"),
        "{run}"
    );
    assert!(
        !said.contains("Some(") && !said.contains("connection lost"),
        "{run}"
    );
    assert!(!up.dir.join("a.txt").exists());
}

#[test]
fn a_500_oops_reply_is_retried_on_a_fresh_connection() {
    let server = FtpServer::start();
    let faults = vec![Fault::Reply {
        command: "STOR".into(),
        path: "a.txt".into(),
        reply: "500 OOPS: vsf_sysutil_bind".into(),
        times: 1,
    }];
    let proxy = FaultProxy::start(&server.addr(), faults);
    let local = Tree::new();
    local.write("a.txt", "hello");
    let up = Upstream {
        name: "libunftp",
        addr: server.addr(),
        url: server.url("oops"),
        dir: server.remote_dir("oops"),
        _server: None,
    };
    let run = sync_through(&proxy, &up, &local, &[]);
    assert_eq!(proxy.fired(0), 1, "{run}");
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(local.path(), &up.dir);
}

#[test]
fn a_multi_line_refusal_with_escape_sequences_is_reported_on_one_line() {
    let server = FtpServer::start();
    let faults = vec![Fault::Reply {
        command: "PASS".into(),
        path: "".into(),
        reply: "530-\x1b]0;pwned\x07 first\r\n530 \x1b[2J\0\x1b[31mdenied\x1b[0m".into(),
        times: usize::MAX,
    }];
    let proxy = FaultProxy::start(&server.addr(), faults);
    let local = Tree::new();
    local.write("a.txt", "a");
    let up = Upstream {
        name: "libunftp",
        addr: server.addr(),
        url: server.url("refused"),
        dir: server.remote_dir("refused"),
        _server: None,
    };
    let run = sync_through(&proxy, &up, &local, &[]);
    assert_eq!(run.code, 2, "{run}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("login refused"))
        .unwrap_or_else(|| panic!("no refusal: {run}"));
    assert!(line.contains("first") && line.contains("denied"), "{run}");
}
