//! Fault injection: each fault, on the in-process server and on the real servers, behind the
//! fault proxy. For every cell: the run ends with the documented exit code and names the file,
//! no final name holds a partial file, the local tree is untouched, and a second run without the
//! fault converges to an exact mirror.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::faults::{Fault, FaultProxy, Listing};
use crate::support::{self, assert_mirror, run, tree_digest, FtpServer, Run, Tree};

const BIG: usize = 10 * 1024 * 1024;

/// A server to inject faults in front of: its address, a URL and the folder behind it.
struct Upstream {
    name: &'static str,
    addr: String,
    url: String,
    dir: PathBuf,
    _server: Option<FtpServer>,
}

/// The in-process server and every real server, each with a fresh folder for `test`.
fn upstreams(test: &str) -> Vec<Upstream> {
    let local = FtpServer::start();
    let mut all = vec![Upstream {
        name: "libunftp",
        addr: local.addr(),
        url: local.url(test),
        dir: local.remote_dir(test),
        _server: Some(local),
    }];
    for real in support::real_servers() {
        let (url, dir) = real.scratch(test);
        let addr = support::host_port(&url);
        all.push(Upstream {
            name: real.name,
            addr,
            url,
            dir,
            _server: None,
        });
    }
    all
}

fn tree() -> Tree {
    let tree = Tree::new();
    tree.write(
        "big.bin",
        (0..BIG).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>(),
    );
    tree.write("dir/a.txt", "a");
    tree.write("dir/sub/b.txt", "b");
    tree.write("stall/s.txt", "s");
    tree.write("quota/f.txt", "f");
    tree.write("forbidden.txt", "no");
    for i in 0..12 {
        tree.write(&format!("small/{i}.txt"), format!("small {i}"));
    }
    tree
}

fn sync_through(proxy: &FaultProxy, up: &Upstream, local: &Tree, extra: &[&str]) -> Run {
    let mut cmd = support::ftpsync();
    cmd.args(["--json", "--timeout", "3"])
        .args(extra)
        .arg(local.path())
        .arg(proxy.url(&up.url));
    run(&mut cmd)
}

/// Every file on the server under its final name is complete: equal to the local one.
fn assert_no_partial_files(local: &Tree, remote: &std::path::Path) {
    for entry in walkdir::WalkDir::new(remote)
        .into_iter()
        .filter_map(Result::ok)
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(remote).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy();
        if name.ends_with(".ftpsync-tmp") {
            continue;
        }
        let theirs = std::fs::read(entry.path()).unwrap();
        let ours = std::fs::read(local.path().join(rel)).unwrap();
        assert!(
            theirs == ours,
            "{} on the server is partial or corrupt",
            rel.display()
        );
    }
}

/// Runs one fault cell on every upstream; `check` asserts on the faulted run.
fn cell(
    test: &str,
    faults: Vec<Fault>,
    extra: &[&str],
    check: impl Fn(&Upstream, &FaultProxy, &Run),
) {
    for up in upstreams(test) {
        let local = tree();
        let before = tree_digest(local.path());
        let proxy = FaultProxy::start(&up.addr, faults.clone());
        let faulted = sync_through(&proxy, &up, &local, extra);
        assert!(
            proxy.fired(0) > 0,
            "{}: the fault never fired: {faulted}",
            up.name
        );
        check(&up, &proxy, &faulted);
        if faulted.code == 0 {
            assert_mirror(local.path(), &up.dir);
        }
        if up.dir.exists() {
            assert_no_partial_files(&local, &up.dir);
        }
        assert_eq!(
            tree_digest(local.path()),
            before,
            "{}: local tree changed",
            up.name
        );

        let clean = FaultProxy::start(&up.addr, vec![]);
        let rerun = sync_through(&clean, &up, &local, &[]);
        assert_eq!(
            rerun.code, 0,
            "{}: rerun without the fault: {rerun}",
            up.name
        );
        assert_mirror(local.path(), &up.dir);
    }
}

#[test]
fn dropped_upload_is_resumed_and_completes() {
    let faults = vec![Fault::DropUploadAfter {
        path: "big".into(),
        after_bytes: 3 * 1024 * 1024,
        times: 1,
    }];
    cell("fault_drop_upload", faults, &[], |up, proxy, run| {
        assert_eq!(run.code, 0, "{}: {run}", up.name);
        let resumed = proxy
            .commands()
            .iter()
            .any(|c| c.starts_with("APPE") && c.contains("big"));
        assert!(
            resumed,
            "{}: the second try should resume with APPE: {:?}",
            up.name,
            proxy.commands()
        );
    });
}

#[test]
fn reset_control_connection_is_retried_on_a_fresh_one() {
    let faults = vec![Fault::ResetOn {
        command: "MKD".into(),
        path: "dir/sub".into(),
        times: 1,
    }];
    cell("fault_reset", faults, &[], |up, _, run| {
        assert_eq!(run.code, 0, "{}: {run}", up.name);
    });
}

#[test]
fn stalled_server_times_out_and_the_job_is_retried() {
    let faults = vec![Fault::StallOn {
        command: "STOR".into(),
        path: "stall".into(),
        times: 1,
    }];
    cell("fault_stall", faults, &[], |up, _, run| {
        assert_eq!(run.code, 0, "{}: {run}", up.name);
        assert!(
            run.summary["elapsed_secs"].as_f64().unwrap() < 30.0,
            "{}: {run}",
            up.name
        );
    });
}

#[test]
fn connection_cap_runs_with_the_connections_it_gets() {
    let faults = vec![Fault::MaxConnections { max: 3 }];
    cell("fault_cap", faults, &["-j", "16"], |up, proxy, run| {
        assert_eq!(run.code, 0, "{}: {run}", up.name);
        assert!(proxy.peak_connections() <= 3);
        assert_eq!(
            run.stderr.matches("accepts only").count(),
            1,
            "{}: reported once: {run}",
            up.name
        );
    });
}

#[test]
fn disk_full_stops_uploads_and_exits_1() {
    let faults = vec![Fault::Reply {
        command: "STOR".into(),
        path: "quota/".into(),
        reply: "452 Insufficient storage space".into(),
        times: usize::MAX,
    }];
    cell("fault_storage", faults, &["-j", "1"], |up, proxy, run| {
        assert_eq!(run.code, 1, "{}: {run}", up.name);
        assert!(
            run.stderr.contains("quota/f.txt") && run.stderr.contains("out of space"),
            "{}: {run}",
            up.name
        );
        let tries = proxy
            .commands()
            .iter()
            .filter(|c| c.starts_with("STOR") && c.contains("quota/"))
            .count();
        assert_eq!(tries, 1, "{}: a full disk is not retried", up.name);
        assert!(!up.dir.join("quota/f.txt").exists());
    });
}

#[test]
fn permission_denied_is_reported_not_retried_and_the_rest_is_done() {
    let faults = vec![Fault::Reply {
        command: "STOR".into(),
        path: "forbidden".into(),
        reply: "550 Permission denied".into(),
        times: usize::MAX,
    }];
    cell("fault_permission", faults, &[], |up, proxy, run| {
        assert_eq!(run.code, 1, "{}: {run}", up.name);
        assert_eq!(run.summary["failed"], 1, "{}: {run}", up.name);
        assert_eq!(run.summary["failures"][0]["path"], "forbidden.txt");
        let tries = proxy
            .commands()
            .iter()
            .filter(|c| c.starts_with("STOR") && c.contains("forbidden"))
            .count();
        assert_eq!(tries, 1, "{}: 550 is permanent", up.name);
        assert!(up.dir.join("big.bin").exists() && up.dir.join("small/3.txt").exists());
    });
}

#[test]
fn listing_reset_is_retried() {
    let faults = vec![Fault::ResetOn {
        command: "".into(),
        path: "fault_list/dir".into(),
        times: 1,
    }];
    // The first run creates the tree; the faulted one must list it again.
    for up in upstreams("fault_list") {
        let local = tree();
        let clean = FaultProxy::start(&up.addr, vec![]);
        assert_eq!(sync_through(&clean, &up, &local, &[]).code, 0);
        local.write("dir/sub/new.txt", "new");
        let proxy = FaultProxy::start(&up.addr, faults.clone());
        let run = sync_through(&proxy, &up, &local, &[]);
        assert!(proxy.fired(0) > 0, "{}: {:?}", up.name, proxy.commands());
        assert_eq!(run.code, 0, "{}: {run}", up.name);
        assert_mirror(local.path(), &up.dir);
    }
}

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
fn an_upload_cut_for_good_never_leaves_a_partial_file_at_the_final_name() {
    let faults = vec![Fault::DropUploadAfter {
        path: "big".into(),
        after_bytes: 1024 * 1024,
        times: 1,
    }];
    cell("fault_atomic", faults, &["--retries", "1"], |up, _, run| {
        assert_eq!(run.code, 1, "{}: {run}", up.name);
        assert!(run.stderr.contains("big.bin"), "{}: {run}", up.name);
        assert!(
            !up.dir.join("big.bin").exists(),
            "{}: partial file at the final name",
            up.name
        );
    });
}

#[test]
fn a_server_refusing_to_rename_over_a_file_gets_delete_then_rename() {
    for up in upstreams("fault_rename") {
        let local = tree();
        let clean = FaultProxy::start(&up.addr, vec![]);
        assert_eq!(sync_through(&clean, &up, &local, &[]).code, 0);
        local.write("dir/a.txt", "changed");
        let refuse = Fault::Reply {
            command: "RNTO".into(),
            path: "dir/a.txt".into(),
            reply: "553 Cannot rename over an existing file".into(),
            times: 1,
        };
        let proxy = FaultProxy::start(&up.addr, vec![refuse]);
        let run = sync_through(&proxy, &up, &local, &[]);
        assert_eq!(proxy.fired(0), 1, "{}: {:?}", up.name, proxy.commands());
        assert_eq!(run.code, 0, "{}: {run}", up.name);
        assert_mirror(local.path(), &up.dir);
    }
}

#[test]
fn deletions_wait_until_every_upload_succeeded() {
    let faults = vec![Fault::Reply {
        command: "STOR".into(),
        path: "forbidden".into(),
        reply: "550 Permission denied".into(),
        times: usize::MAX,
    }];
    for up in upstreams("fault_delete_order") {
        let local = tree();
        local.write("obsolete.txt", "old");
        let clean = FaultProxy::start(&up.addr, vec![]);
        assert_eq!(sync_through(&clean, &up, &local, &[]).code, 0);
        local.remove("obsolete.txt");
        local.write("forbidden.txt", "changed");
        let proxy = FaultProxy::start(&up.addr, faults.clone());
        let run = sync_through(&proxy, &up, &local, &["--delete"]);
        assert_eq!(run.code, 1, "{}: {run}", up.name);
        assert!(
            up.dir.join("obsolete.txt").exists(),
            "{}: deleted despite a failed upload",
            up.name
        );
    }
}

#[test]
fn a_server_answering_commands_during_transfers_gets_none_behind_its_transfers() {
    // pure-ftpd reads the control connection while a transfer runs and answers what it finds
    // there with 500. The one NOOP that finds this out is the only command it ever sees there.
    let faults = vec![Fault::AnswerDuringTransfer];
    cell(
        "fault_answer_during_transfer",
        faults,
        &["-j", "1", "-vv"],
        |up, proxy, run| {
            assert_eq!(run.code, 0, "{}: {run}", up.name);
            assert_eq!(
                proxy.fired(0),
                1,
                "{}: commands answered during transfers: {:?}",
                up.name,
                proxy.commands()
            );
            assert!(
                run.stderr.contains("reads commands during transfers"),
                "{}: {run}",
                up.name
            );
        },
    );
}

#[test]
fn a_file_that_changes_during_its_upload_is_sent_again() {
    // The upload of a.txt is over on the server, but its 226 is held back while the local file
    // changes: the old version must not be renamed into place; the new one is sent.
    for up in upstreams("fault_changed_during_upload") {
        let local = Tree::new();
        // Largest first: b.txt goes first, so a.txt's upload is a link of a chain.
        local.write("b.txt", "b".repeat(4096));
        local.write("a.txt", "first version");
        local.write("c.txt", "c");
        let hold = Fault::HoldTransferEnd {
            path: "a.txt".into(),
            times: 1,
        };
        let proxy = FaultProxy::start(&up.addr, vec![hold]);
        let run = std::thread::scope(|s| {
            let syncing = s.spawn(|| sync_through(&proxy, &up, &local, &["-j", "1"]));
            assert!(
                proxy.wait_held(std::time::Duration::from_secs(60)),
                "{}: the upload of a.txt never ended",
                up.name
            );
            local.write("a.txt", "second version, longer");
            proxy.release();
            syncing.join().unwrap()
        });
        assert_eq!(run.code, 0, "{}: {run}", up.name);
        assert_eq!(
            std::fs::read_to_string(up.dir.join("a.txt")).unwrap(),
            "second version, longer",
            "{}",
            up.name
        );
        assert_mirror(local.path(), &up.dir);
        let stores = proxy
            .commands()
            .iter()
            .filter(|c| c.starts_with("STOR") && c.contains("a.txt"))
            .count();
        assert_eq!(stores, 2, "{}: {:?}", up.name, proxy.commands());
    }
}

// Safety: every run ends, in bounded memory, whatever the server sends; a stop ends a run that
// is only connecting or listing at once. These run the binary on the in-process server.

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

#[test]
fn a_name_with_a_leading_space_settles_on_a_list_only_server() {
    // FEAT answered without MLST: every server is listed with STAT -a or LIST.
    let faults = vec![Fault::Reply {
        command: "FEAT".into(),
        path: "".into(),
        reply: "211 No features".into(),
        times: usize::MAX,
    }];
    for up in upstreams("leading_space") {
        let local = Tree::new();
        local.write(" lead", "lead");
        local.write("plain", "plain");
        let proxy = FaultProxy::start(&up.addr, faults.clone());
        let first = sync_through(&proxy, &up, &local, &["--delete"]);
        assert_eq!(first.code, 0, "{}: {first}", up.name);
        let again = sync_through(&proxy, &up, &local, &["--delete"]);
        assert_eq!(again.code, 0, "{}: {again}", up.name);
        let changes = (&again.summary["files_uploaded"], &again.summary["deleted"]);
        assert_eq!(changes, (&0.into(), &0.into()), "{}: {again}", up.name);
        assert_eq!(std::fs::read(up.dir.join(" lead")).unwrap(), b"lead");
        assert_mirror(local.path(), &up.dir);
    }
}
