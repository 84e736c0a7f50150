//! Stopping: SIGTERM lets the transfers in flight finish, logs out, exits 130; a transfer still
//! running a few seconds after the stop is aborted, never at its final name; a rerun completes
//! the mirror.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{self, assert_mirror, sync, FtpServer, Tree};

#[test]
fn sigterm_finishes_in_flight_transfers_then_exits_130() {
    let server = FtpServer::start();
    let tree = Tree::new();
    for i in 0..150 {
        tree.write(&format!("f{i:03}.bin"), vec![i as u8; 1024 * 1024]);
    }
    // Wait for the first completed upload, then ask it to stop.
    let url = server.url("site");
    let args = [
        "-j".as_ref(),
        "1".as_ref(),
        tree.path().as_os_str(),
        url.as_ref(),
    ];
    let (mut child, mut stdout) = support::spawn_until_first_upload(&args);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "ftpsync did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(code, Some(130), "stdout after the signal:\n{rest}");
    assert!(rest.contains("interrupted"), "{rest}");

    // Whatever arrived is complete: no file on the server is partial.
    let remote = server.remote_dir("site");
    let mut arrived = 0;
    for entry in std::fs::read_dir(&remote).unwrap() {
        let entry = entry.unwrap();
        let local = std::fs::read(tree.join(entry.file_name().to_str().unwrap())).unwrap();
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            local,
            "{:?} is partial",
            entry.file_name()
        );
        arrived += 1;
    }
    assert!(arrived < 150, "the stop came too late to prove anything");

    let rerun = sync(tree.path(), &server.url("site"), &[]);
    assert_eq!(rerun.code, 0, "{rerun}");
    assert_mirror(tree.path(), &remote);
}

#[test]
fn a_transfer_still_running_after_the_grace_is_aborted_with_130() {
    // The server keeps a transfer's end (its 226) to itself: in flight for as long as the
    // timeout. A stop must not wait for it: after a few seconds the run is aborted, and the
    // upload never reaches its final name.
    use crate::support::faults::{Fault, FaultProxy};
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("held.txt", "never confirmed");
    let hold = Fault::HoldTransferEnd {
        path: "held.txt".into(),
        times: 1,
    };
    let url = server.url("site");
    let proxy = FaultProxy::start(&support::host_port(&url), vec![hold]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut cmd);
    let mut child = cmd
        .args(["--json", "--timeout", "600"])
        .arg(tree.path())
        .arg(proxy.url(&url))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        proxy.wait_held(Duration::from_secs(60)),
        "the upload never ended"
    );
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if signalled.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("still waiting for the held transfer a minute after the stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(130));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(stdout.contains("\"exit_code\":130"), "{stdout}");
    assert!(
        !server.remote_dir("site").join("held.txt").exists(),
        "an unconfirmed upload reached its final name"
    );
    proxy.release();

    let rerun = sync(tree.path(), &url, &[]);
    assert_eq!(rerun.code, 0, "{rerun}");
    assert_mirror(tree.path(), &server.remote_dir("site"));
}
