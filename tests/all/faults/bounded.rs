//! Safety: every run ends, in bounded memory, whatever the server sends; a stop ends a run that
//! is only connecting or listing at once. These run the binary on the in-process server.

use std::time::{Duration, Instant};

use crate::support::faults::{Fault, FaultProxy, Listing};
use crate::support::{self, FtpServer, Tree};

/// How a run under [`run_bounded`] went.
struct Bounded {
    /// None: killed, because it ran past its time or memory limit.
    code: Option<i32>,
    elapsed: Duration,
    /// The peak resident memory (VmHWM) of the ftpsync process, in MB.
    peak_mb: u64,
    output: String,
}

impl std::fmt::Display for Bounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}, peak {} MB\n{}",
            self.code, self.elapsed, self.peak_mb, self.output
        )
    }
}

/// Most memory a run may take whatever a server sends.
const MEMORY_CAP_MB: u64 = 300;

/// Starts ftpsync with `args` (isolated as [`support::ftpsync`] is) and `env`.
fn start(args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut cmd);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ftpsync")
}

/// Waits for `child`, killing it past `limit` or past [`MEMORY_CAP_MB`] of resident memory
/// (so that a run that never ends, or grows without bound, fails the test rather than the
/// machine).
fn run_bounded(mut child: std::process::Child, limit: Duration) -> Bounded {
    let started = Instant::now();
    let reader = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as _));
    let mut peak_mb = 0;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        peak_mb = peak_mb.max(vm_hwm_mb(child.id()));
        if started.elapsed() > limit || peak_mb > MEMORY_CAP_MB {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let output = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout.join().unwrap(),
        stderr.join().unwrap()
    );
    Bounded {
        code,
        elapsed,
        peak_mb,
        output,
    }
}

/// The peak resident memory of process `pid` so far, in MB (0 once it is gone).
fn vm_hwm_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0u64);
    kb / 1024
}

/// Sends `signal` (`"TERM"`, `"INT"`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits (at most 30 s) until a client sent a command starting with `verb` through `proxy`.
fn wait_for_command(proxy: &FaultProxy, verb: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proxy.commands().iter().any(|c| c.starts_with(verb)) {
        assert!(
            Instant::now() < deadline,
            "no {verb}: {:?}",
            proxy.commands()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn serve_listing(listing: Listing) -> Vec<Fault> {
    vec![Fault::ServeListing {
        command: "MLSD".into(),
        path: "".into(),
        listing,
        times: usize::MAX,
    }]
}

#[test]
fn an_endless_listing_ends_the_run_with_an_error_naming_the_cap_in_bounded_memory() {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), serve_listing(Listing::Endless));
    let local = Tree::new();
    local.write("a.txt", "a");
    let url = proxy.url(&server.url("endless"));
    let args = ["--timeout", "60", local.path().to_str().unwrap(), &url];
    let run = run_bounded(start(&args, &[]), Duration::from_secs(100));
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.peak_mb < MEMORY_CAP_MB, "{run}");
    assert!(
        run.output
            .contains("listing of remote folder \"endless\" exceeded 1200000 entries"),
        "{run}"
    );
    assert!(!server.remote_dir("endless").join("a.txt").exists());
}

#[test]
fn a_trickling_listing_ends_at_the_listing_deadline() {
    let server = FtpServer::start();
    let every = Duration::from_secs(1);
    let proxy = FaultProxy::start(&server.addr(), serve_listing(Listing::Trickle { every }));
    let local = Tree::new();
    local.write("a.txt", "a");
    let url = proxy.url(&server.url("trickle"));
    // Each line comes well within --timeout: only the deadline for the whole listing ends it.
    let args = ["--timeout", "10", local.path().to_str().unwrap(), &url];
    let env = [("FTPSYNC_LISTING_DEADLINE_SECS", "3")];
    let run = run_bounded(start(&args, &env), Duration::from_secs(30));
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.elapsed < Duration::from_secs(10), "{run}");
    assert!(run.output.contains("exceeded 3 s"), "{run}");
}

/// Starts a sync through `proxy` with a long timeout, waits until `verb` went out, sends
/// `sig`: the run must end at once with exit 130.
fn stop_while(faults: Vec<Fault>, verb: &str, sig: &str) {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), faults);
    let local = Tree::new();
    local.write("a.txt", "a");
    let url = proxy.url(&server.url("stop"));
    let args = ["--timeout", "60", local.path().to_str().unwrap(), &url];
    let child = start(&args, &[]);
    wait_for_command(&proxy, verb);
    let pid = child.id();
    let stopped = Instant::now();
    signal(pid, sig);
    let run = run_bounded(child, Duration::from_secs(20));
    assert_eq!(run.code, Some(130), "{run}");
    assert!(stopped.elapsed() < Duration::from_secs(3), "{run}");
    assert!(!server.remote_dir("stop").join("a.txt").exists());
}

#[test]
fn sigterm_while_logging_in_ends_the_run_at_once_with_exit_130() {
    let stall = Fault::StallOn {
        command: "USER".into(),
        path: "".into(),
        times: usize::MAX,
    };
    stop_while(vec![stall], "USER", "TERM");
}

#[test]
fn ctrl_c_while_listing_ends_the_run_at_once_with_exit_130() {
    let stall = Fault::StallOn {
        command: "MLSD".into(),
        path: "".into(),
        times: usize::MAX,
    };
    stop_while(vec![stall], "MLSD", "INT");
}
