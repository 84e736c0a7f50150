//! One run per target: a second run on the same remote folder, however its URL is spelled, is
//! refused while the first holds the lock, and never removes the first one's temporary file.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::faults::{Fault, FaultProxy};
use crate::support::{self, assert_mirror, isolate_env, FtpServer, Tree};

use super::temp_files;

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
