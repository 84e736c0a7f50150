//! The live progress display: on a terminal (ftpsync run under `script(1)`, which gives it a
//! pseudo-terminal), never in a pipe, and as `--progress` / `--no-progress` say.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::faults::{Fault, FaultProxy};
use crate::support::{assert_mirror, ftpsync, isolate_env, run, FtpServer, Tree};

/// The run's line of the display, as first drawn (`files 0/3 [...`); nothing else prints it.
const DISPLAY: &str = "files 0/";

/// `text` quoted for `sh`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Starts ftpsync with `args` on a pseudo-terminal (stdout and stderr both); its output (both
/// streams, as the terminal got them) comes from the child's stdout.
fn start_on_terminal(args: &[&str]) -> std::process::Child {
    start_on_terminal_with(args, &[])
}

/// [`start_on_terminal`] with these environment variables set (`None`: removed).
fn start_on_terminal_with(args: &[&str], vars: &[(&str, Option<&str>)]) -> std::process::Child {
    let line: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_ftpsync"))
        .chain(args.iter().copied())
        .map(quoted)
        .collect();
    let mut cmd = Command::new("script");
    isolate_env(&mut cmd);
    cmd.env("TERM", "xterm")
        .args(["-qfec", &line.join(" "), "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in vars {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    cmd.spawn().expect("start script(1) (util-linux)")
}

/// Runs ftpsync with `args` on a pseudo-terminal: its exit code and what the terminal got.
fn on_terminal(args: &[&str]) -> (i32, String) {
    finish(start_on_terminal(args))
}

fn finish(mut child: std::process::Child) -> (i32, String) {
    let mut output = Vec::new();
    let mut stdout = child.stdout.take().expect("piped stdout");
    stdout.read_to_end(&mut output).expect("read the terminal");
    let status = child.wait().expect("wait for script(1)");
    let output = String::from_utf8_lossy(&output).into_owned();
    (status.code().unwrap_or(-1), output)
}

fn three_files() -> Tree {
    let tree = Tree::new();
    tree.write("a.txt", "a");
    tree.write("b/c.txt", "cc");
    tree.write("d.bin", vec![1u8; 300 * 1024]);
    tree
}

#[test]
fn a_terminal_shows_the_display_with_the_change_lines_above_it() {
    let server = FtpServer::start();
    let tree = three_files();
    let url = server.url("site");
    let (code, output) = on_terminal(&[tree.path().to_str().unwrap(), &url]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("files 0/3 ["), "no display:\n{output}");
    for line in [
        "> a.txt",
        "> b/c.txt",
        "> d.bin (300.0 KiB)",
        "3 files uploaded",
    ] {
        assert!(output.contains(line), "{line:?} missing:\n{output}");
    }
    assert_mirror(tree.path(), &server.remote_dir("site"));
}

#[test]
fn no_progress_turns_the_display_off_on_a_terminal() {
    let server = FtpServer::start();
    let tree = three_files();
    let url = server.url("site");
    let (code, output) = on_terminal(&["--no-progress", tree.path().to_str().unwrap(), &url]);
    assert_eq!(code, 0, "{output}");
    assert!(!output.contains(DISPLAY), "{output}");
    assert!(output.contains("3 files uploaded"), "{output}");
}

#[test]
fn quiet_and_json_runs_show_no_display_on_a_terminal() {
    let server = FtpServer::start();
    let tree = three_files();
    for (i, flag) in ["-q", "--json"].into_iter().enumerate() {
        let url = server.url(&format!("site{i}"));
        let (code, output) = on_terminal(&[flag, tree.path().to_str().unwrap(), &url]);
        assert_eq!(code, 0, "{flag}: {output}");
        assert!(!output.contains(DISPLAY), "{flag}: {output}");
    }
}

#[test]
fn a_pipe_gets_no_display_unless_progress_asks_for_it() {
    let server = FtpServer::start();
    let tree = three_files();
    let mut cmd = ftpsync();
    cmd.arg(tree.path()).arg(server.url("plain"));
    let plain = run(&mut cmd);
    assert_eq!(plain.code, 0, "{plain}");
    assert!(!plain.stderr.contains(DISPLAY), "{plain}");
    let escapes = |text: &str| text.contains('\x1b');
    assert!(
        !escapes(&plain.stdout) && !escapes(&plain.stderr),
        "{plain}"
    );
    assert!(plain.stdout.contains("> a.txt (1 B)\n"), "{plain}");

    let mut cmd = ftpsync();
    cmd.arg("--progress")
        .arg(tree.path())
        .arg(server.url("asked"));
    let asked = run(&mut cmd);
    assert_eq!(asked.code, 0, "{asked}");
    assert!(asked.stderr.contains("files 0/3 ["), "{asked}");
    // The display is on stderr: stdout keeps its lines, whole.
    assert!(!asked.stdout.contains(DISPLAY), "{asked}");
    assert_eq!(
        asked.stdout.lines().filter(|l| l.starts_with("> ")).count(),
        3
    );
    assert_mirror(tree.path(), &server.remote_dir("asked"));
}

#[test]
fn progress_and_no_progress_exclude_each_other() {
    let mut cmd = ftpsync();
    cmd.args(["--progress", "--no-progress", ".", "ftp://h/"]);
    let both = run(&mut cmd);
    assert_eq!(both.code, 2, "{both}");
    assert!(both.stderr.contains("cannot be used with"), "{both}");
}

/// The bytes of a large file count while it is in flight: its 226 held back, the display shows
/// its bytes sent, on its own line, before the file is done.
#[test]
fn a_large_file_in_flight_has_its_own_line_and_its_bytes_count_before_it_ends() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("big.bin", vec![5u8; 9 << 20]);
    let hold = Fault::HoldTransferEnd {
        path: "big.bin".into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![hold]);
    let url = proxy.url(&server.url("site"));
    let child = start_on_terminal(&[tree.path().to_str().unwrap(), &url]);
    assert!(proxy.wait_held(Duration::from_secs(60)), "never held");
    // A few redraws while the upload waits for its 226.
    std::thread::sleep(Duration::from_millis(600));
    proxy.release();
    let (code, output) = finish(child);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("files 0/1 [") && output.contains("9.00 MiB/9.00 MiB 100%"),
        "the bytes did not count before the file was done:\n{output}"
    );
    assert!(
        output.contains("  big.bin ["),
        "no line for the large file:\n{output}"
    );
    assert_mirror(tree.path(), &server.remote_dir("site"));
}

/// The start of a colour (SGR) escape sequence: `ESC [ 3x m`.
const COLOUR: &str = "\x1b[3";

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let server = FtpServer::start();
    let tree = three_files();
    let url = server.url("site");
    let args = ["-v", "--no-progress", tree.path().to_str().unwrap(), &url];
    let (code, output) = finish(start_on_terminal_with(&args, &[("NO_COLOR", None)]));
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("\x1b[34m>\x1b[0m a.txt"),
        "change marker not coloured:\n{output:?}"
    );
    assert!(
        output.contains("\x1b[34mDEBUG\x1b[0m"),
        "log level not coloured:\n{output:?}"
    );

    tree.write("a.txt", "changed");
    let (code, output) = finish(start_on_terminal_with(&args, &[("NO_COLOR", Some("1"))]));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("> a.txt"), "{output}");
    assert!(!output.contains(COLOUR), "NO_COLOR ignored:\n{output:?}");
}

#[test]
fn a_pipe_gets_no_colour_even_without_no_color() {
    let server = FtpServer::start();
    let tree = three_files();
    let mut cmd = ftpsync();
    cmd.env_remove("NO_COLOR").env("TERM", "xterm").args([
        "-v",
        tree.path().to_str().unwrap(),
        &server.url("site"),
    ]);
    let out = cmd.output().expect("run ftpsync");
    assert!(out.status.success(), "{out:?}");
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains('\x1b'), "escape codes in a pipe:\n{text:?}");
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("> a.txt"));
}
