//! The binary under test: [`ftpsync`] with an environment isolated from the machine's, and
//! [`sync`] / [`run`], which run it and collect a [`Run`] (exit code, output, parsed summary).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// A folder for the whole test process under `target/tmp/ftpsync-env/` (statics are never
/// dropped, so these are not removed at exit; folders left by runs over an hour old are).
fn kept_temp_dir(cell: &'static OnceLock<PathBuf>, prefix: &str) -> &'static Path {
    cell.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ftpsync-env");
        fs::create_dir_all(&parent).expect("create target/tmp/ftpsync-env");
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < an_hour_ago);
            if stale && entry.file_name().to_string_lossy().starts_with(prefix) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&parent)
            .expect("create a temp folder")
            .keep()
    })
}

/// The `XDG_STATE_HOME` that [`ftpsync`] commands get: one per test binary run, shared by its
/// tests (state is keyed by server URL, and each test uses its own server or scratch folder).
pub fn state_home() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    kept_temp_dir(&DIR, "state-")
}

/// The `HOME` that [`ftpsync`] commands get, so the machine's `~/.netrc` is never read.
pub fn fake_home() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    kept_temp_dir(&DIR, "home-")
}

/// The ftpsync binary, isolated from the machine by [`isolate_env`].
pub fn ftpsync() -> assert_cmd::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    isolate_env(&mut cmd);
    assert_cmd::Command::from_std(cmd)
}

/// Points `HOME`, `XDG_STATE_HOME`, `XDG_CONFIG_HOME` and `XDG_CACHE_HOME` at temp folders kept
/// for the whole test run, removes `NETRC`, `FTPSYNC_PASSWORD` and every other `FTPSYNC_*`
/// variable, and sets `NO_COLOR=1`.
pub fn isolate_env(cmd: &mut std::process::Command) {
    let home = fake_home();
    cmd.env("HOME", home)
        .env("XDG_STATE_HOME", state_home())
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("NO_COLOR", "1")
        .env_remove("NETRC")
        .env_remove("FTPSYNC_PASSWORD");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FTPSYNC_") {
            cmd.env_remove(name);
        }
    }
}

/// The outcome of one ftpsync run (see [`sync`] and [`run`]). `Display` shows all of it, for
/// assertion messages: `assert_eq!(run.code, 0, "{run}")`.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The last line of stdout parsed as JSON (the `--json` summary), or `Null`.
    pub summary: serde_json::Value,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ftpsync exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// How long one ftpsync run may take before [`run`] kills it (so a hang fails the test).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `ftpsync --json EXTRA... LOCAL URL` (isolated as [`ftpsync`] is) and collects the result.
pub fn sync(local: &Path, url: &str, extra: &[&str]) -> Run {
    let mut cmd = ftpsync();
    cmd.arg("--json").args(extra).arg(local).arg(url);
    run(&mut cmd)
}

/// Like [`sync`], with an empty state folder: no record of earlier runs.
pub fn sync_with_fresh_state(local: &Path, url: &str, extra: &[&str]) -> Run {
    let state = tempfile::tempdir().expect("create a state folder");
    let mut cmd = ftpsync();
    cmd.env("XDG_STATE_HOME", state.path())
        .arg("--json")
        .args(extra)
        .arg(local)
        .arg(url);
    run(&mut cmd)
}

/// Runs `cmd` (e.g. from [`ftpsync`], with more env or stdin set) with [`RUN_TIMEOUT`].
pub fn run(cmd: &mut assert_cmd::Command) -> Run {
    let output = cmd
        .timeout(RUN_TIMEOUT)
        .output()
        .unwrap_or_else(|err| panic!("run ftpsync: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let summary = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or(serde_json::Value::Null);
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        summary,
    }
}

/// Starts ftpsync with `args` and returns once it printed its first completed upload (`> ...`),
/// with its stdout for the rest; stderr is discarded.
pub fn spawn_until_first_upload(
    args: &[&std::ffi::OsStr],
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    isolate_env(&mut cmd);
    let mut child = cmd
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ftpsync");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    while !line.starts_with("> ") {
        line.clear();
        let n = stdout.read_line(&mut line).expect("read ftpsync's output");
        assert!(n > 0, "ftpsync ended before uploading");
    }
    (child, stdout)
}
