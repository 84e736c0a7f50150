//! The binary as scripts see it: exit codes, one-line errors, and passwords never shown.

use crate::support::{self, ftpsync, sync, FtpServer, Tree};

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
    assert!(stdout.contains("1 file uploaded"), "{stdout}");
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

// ---------------------------------------------------------------------------------------------
// Untrusted text on the terminal, closed pipes, --json errors, argument errors
// ---------------------------------------------------------------------------------------------

/// The reply a hostile server gives to PASS: retitles the window, clears the screen, ends in NUL.
const HOSTILE_REPLY: &[u8] = b"530 \x1b]0;pwned\x07\x1b[2J bad\0\r\n";

/// A scripted FTP server on a loopback port: greets, asks for the password, and answers `PASS`
/// with `reply` (anything else with 502). Serves every connection until the test ends.
fn refusing_server(reply: &'static [u8]) -> u16 {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut lines = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                let _ = out.write_all(b"220 scripted server\r\n");
                let mut line = Vec::new();
                while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let answer = match line.get(..4).map(|v| v.to_ascii_uppercase()) {
                        Some(v) if v == b"USER" => b"331 password please\r\n".as_slice(),
                        Some(v) if v == b"PASS" => reply,
                        _ => b"502 not here\r\n".as_slice(),
                    };
                    if out.write_all(answer).is_err() {
                        break;
                    }
                    line.clear();
                }
            });
        }
    });
    port
}

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
    while !line.contains("stopping after the transfers in progress") {
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

#[test]
fn max_depth_0_is_refused_in_one_line() {
    let out = ftpsync()
        .args(["--max-depth", "0", ".", "ftp://h/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(one_line_error(&stderr).contains("--max-depth"), "{stderr}");
}

#[test]
fn argument_errors_are_one_short_line_each() {
    for args in [
        &["-j", "0", ".", "ftp://h/"][..],
        &["--dellete", ".", "ftp://h/"],
        &["."],
        &[],
        &["--tls", "bogus", ".", "ftp://h/"],
        &["--insecure", "--ca-file", "x", ".", "ftps://h/"],
        &["--debounce", "1s", ".", "ftp://h/"],
        &["--every", "soon", ".", "ftp://h/"],
    ] {
        let out = ftpsync().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = one_line_error(&stderr);
        assert!(line.ends_with("; see ftpsync --help"), "{line}");
        assert!(!line.contains("error: "), "{line}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_and_version_still_print_in_full_and_exit_0() {
    let help = ftpsync().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).lines().count() > 20);
    let version = ftpsync().arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&version.stdout);
    assert_eq!(
        stdout.trim(),
        format!("ftpsync {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_missing_exclude_file_names_its_cause_once() {
    let tree = Tree::new();
    let out = ftpsync()
        .args(["--exclude-from", "/no/such/excludes"])
        .arg(tree.path())
        .arg("ftp://h/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
}

#[test]
fn a_huge_host_or_argument_is_not_echoed_in_full() {
    let tree = Tree::new();
    let host = "h".repeat(100_000);
    let long_dir = format!("/no/such/{}", "d".repeat(100_000));
    for (local, url) in [
        (
            tree.path().to_str().unwrap(),
            format!("ftp://{host}:99999/"),
        ),
        (tree.path().to_str().unwrap(), format!("http://{host}/")),
        (long_dir.as_str(), "ftp://u:p@127.0.0.1:1/".to_owned()),
    ] {
        let out = ftpsync().arg(local).arg(&url).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = one_line_error(&stderr);
        assert!(
            line.len() < 400,
            "{} characters: {}…",
            line.len(),
            &line[..200]
        );
        assert!(line.contains('…'), "{line}");
    }
    let out = ftpsync()
        .args(["--tls", &host, ".", "ftp://h/"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert!(line.len() < 400, "{} characters", line.len());
}

// ---------------------------------------------------------------------------------------------
// Bounded reads and private credentials
// ---------------------------------------------------------------------------------------------

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

#[test]
fn an_exclude_file_that_never_ends_is_refused_at_once() {
    let out = ftpsync()
        .args(["--exclude-from", "/dev/zero", ".", "ftp://h/"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        one_line_error(&stderr).contains("larger than 4 MiB"),
        "{stderr}"
    );
}

#[test]
fn an_exclude_file_with_too_many_patterns_is_refused_with_the_count() {
    let tree = Tree::new();
    let excludes = tree.path().join("excludes");
    let lines: String = (0..20_000).map(|i| format!("*.e{i}\n")).collect();
    std::fs::write(&excludes, lines).unwrap();
    let out = ftpsync()
        .arg("--exclude-from")
        .arg(&excludes)
        .args([".", "ftp://h/"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        one_line_error(&stderr),
        format!(
            "ftpsync: --exclude-from {} has 20000 patterns; at most 1000 are supported",
            excludes.display()
        )
    );
    // The cap counts the command line and the files together.
    let lines: String = (0..1000).map(|i| format!("*.e{i}\n")).collect();
    std::fs::write(&excludes, lines).unwrap();
    let out = ftpsync()
        .args(["--exclude", "*.tmp", "--exclude-from"])
        .arg(&excludes)
        .args([".", "ftp://h/"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        one_line_error(&stderr)
            .ends_with("has 1000 patterns, with 1 before it; at most 1000 are supported"),
        "{stderr}"
    );
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
