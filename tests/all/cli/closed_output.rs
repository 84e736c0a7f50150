//! Closed pipes: output piped to a reader that stops early, or a closed stderr, neither hangs nor
//! panics the run, and SIGTERM still stops it.

use crate::support::{self, FtpServer, Tree};

/// Runs `cmd` with stderr (and stdout too if `both`, else stdout to /dev/null) on a pipe whose
/// reader takes `lines_read` lines and then closes it; returns the exit code. Fails the test if
/// the process outlives `limit` after starting (then kills it).
fn exit_code_with_closed_output(
    cmd: &mut std::process::Command,
    both: bool,
    lines_read: usize,
) -> Option<i32> {
    use std::io::BufRead;
    let limit = std::time::Duration::from_secs(60);
    let (reader, writer) = std::io::pipe().unwrap();
    let reading = std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(reader);
        let mut line = String::new();
        for _ in 0..lines_read {
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
        }
        // Dropping the reader closes the pipe: every later write by ftpsync fails (EPIPE).
    });
    cmd.stdin(std::process::Stdio::null());
    if both {
        cmd.stdout(writer.try_clone().unwrap()).stderr(writer);
    } else {
        cmd.stdout(std::process::Stdio::null()).stderr(writer);
    }
    let mut child = cmd.spawn().unwrap();
    // Closes this process's copies of the write end (they went into `cmd`).
    drop(std::mem::replace(cmd, std::process::Command::new("true")));
    reading.join().unwrap();
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ftpsync still running {limit:?} after its output pipe was closed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A tree whose `-v` sync logs a few hundred lines.
fn chatty_tree() -> Tree {
    let tree = Tree::new();
    for i in 0..200 {
        tree.write(&format!("d{}/f{i}.txt", i % 10), format!("file {i}"));
    }
    tree
}

fn verbose_sync(tree: &Tree, server: &FtpServer) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut cmd);
    cmd.arg("-v").arg(tree.path()).arg(server.url(""));
    cmd
}

#[test]
fn output_piped_to_a_reader_that_stops_early_neither_hangs_nor_panics() {
    // As `ftpsync -v ... 2>&1 | head -2`: once head exits, every write fails.
    let server = FtpServer::start();
    let tree = chatty_tree();
    let code = exit_code_with_closed_output(&mut verbose_sync(&tree, &server), true, 2);
    assert_eq!(code, Some(0), "the sync runs to its end");
    support::assert_mirror(tree.path(), &server.remote_dir(""));
}

#[test]
fn a_closed_stderr_neither_hangs_nor_panics() {
    let server = FtpServer::start();
    let tree = chatty_tree();
    let code = exit_code_with_closed_output(&mut verbose_sync(&tree, &server), false, 0);
    assert_eq!(code, Some(0), "the sync runs to its end");
    support::assert_mirror(tree.path(), &server.remote_dir(""));
}

#[test]
fn sigterm_still_stops_a_run_whose_stderr_is_closed() {
    // The stop message used to panic the signal listener on EPIPE: SIGTERM was then ignored.
    use std::io::BufRead;
    let server = FtpServer::start();
    let tree = Tree::new();
    for i in 0..150 {
        tree.write(&format!("f{i:03}.bin"), vec![i as u8; 256 * 1024]);
    }
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut cmd);
    let mut child = cmd
        .args(["-j", "1"])
        .arg(tree.path())
        .arg(server.url(""))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(writer)
        .spawn()
        .unwrap();
    drop(cmd);
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("> ") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "ended before uploading"
        );
    }
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(kill.unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ftpsync did not stop within 60 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(code, Some(130));
}
