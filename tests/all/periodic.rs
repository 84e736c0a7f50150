//! Keeping a folder mirrored: `--every` cycles on a steady clock, `--watch` cycles on changes,
//! zero CPU between cycles, clean stops, and a server that goes away between cycles.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::faults::{Fault, FaultProxy};
use crate::support::{assert_mirror, isolate_env, FtpServer, Tree};

/// A running `ftpsync --json` in periodic mode, with its cycle summaries as they come.
struct Mirror {
    child: Child,
    cycles: mpsc::Receiver<serde_json::Value>,
    notices: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Mirror {
    fn start(local: &Tree, url: &str, args: &[&str]) -> Mirror {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftpsync"));
        isolate_env(&mut cmd);
        let mut child = cmd
            .arg("--json")
            .args(args)
            .arg(local.path())
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, cycles) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let value: serde_json::Value =
                    serde_json::from_str(&line).expect("one JSON object per line");
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let notices = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = notices.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Mirror {
            child,
            cycles,
            notices,
        }
    }

    fn next_cycle(&self, within: Duration) -> serde_json::Value {
        match self.cycles.recv_timeout(within) {
            Ok(cycle) => cycle,
            Err(e) => panic!(
                "no cycle summary in time ({e}); stderr:\n{}",
                self.stderr_so_far()
            ),
        }
    }

    /// Cycles until one uploaded something (or deleted), within `within`.
    fn cycle_with_changes(&self, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let cycle = self.next_cycle(left);
            // A failed cycle's object, {"cycle": N, "error": ...}, has neither count.
            let count = |key: &str| cycle[key].as_u64().unwrap_or(0);
            if count("files_uploaded") + count("deleted") > 0 {
                return cycle;
            }
        }
    }

    fn stderr_so_far(&self) -> String {
        self.notices.lock().unwrap().clone()
    }

    fn terminate(mut self) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "ftpsync did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until `remote` mirrors `local`.
fn converges(mirror: &Mirror, local: &Tree, remote: &std::path::Path, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && contents(local.path()) != contents(remote) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if contents(local.path()) != contents(remote) {
        eprintln!("ftpsync's stderr so far:\n{}", mirror.stderr_so_far());
    }
    assert_mirror(local.path(), remote);
}

/// Paths and file contents under `dir`, tolerating files that vanish while it looks (an upload's
/// temporary file being renamed).
fn contents(dir: &std::path::Path) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = e
                .file_type()
                .is_file()
                .then(|| std::fs::read(e.path()).ok())
                .flatten();
            (rel, bytes)
        })
        .collect()
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn every_period_changes_reach_the_server_within_one_period() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("a.txt", "one");
    let mirror = Mirror::start(&local, &server.url("site"), &["--every", "1s"]);
    let first = mirror.next_cycle(Duration::from_secs(30));
    assert_eq!(first["files_uploaded"], 1);
    assert_eq!(first["cycle"], 1);

    local.write("b/new.txt", "two");
    local.write("a.txt", "changed");
    let cycle = mirror.cycle_with_changes(Duration::from_secs(3));
    assert_eq!(cycle["files_uploaded"], 2, "{cycle}");
    assert_mirror(local.path(), &server.remote_dir("site"));

    assert_eq!(mirror.terminate(), Some(0), "a clean stop exits 0");
}

#[test]
fn with_progress_each_cycle_shows_its_own_display() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("a.txt", "one");
    let args = ["--every", "1s", "--progress"];
    let mirror = Mirror::start(&local, &server.url("site"), &args);
    assert_eq!(
        mirror.next_cycle(Duration::from_secs(30))["files_uploaded"],
        1
    );
    local.write("b.txt", "two");
    local.write("c.txt", "three");
    let cycle = mirror.cycle_with_changes(Duration::from_secs(5));
    assert_eq!(cycle["files_uploaded"], 2, "{cycle}");
    assert_mirror(local.path(), &server.remote_dir("site"));
    let stderr = mirror.stderr_so_far();
    assert!(stderr.contains("files 0/1 ["), "{stderr}");
    assert!(stderr.contains("files 0/2 ["), "{stderr}");
    assert_eq!(mirror.terminate(), Some(0), "a clean stop exits 0");
}

#[test]
fn with_checksum_each_cycle_updates_the_manifest() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("a.txt", "one");
    let mirror = Mirror::start(&local, &server.url("site"), &["-c", "--every", "1s"]);
    let first = mirror.next_cycle(Duration::from_secs(30));
    assert_eq!(first["files_uploaded"], 1, "{first}");
    assert_eq!(first["manifest_written"], true, "{first}");
    let manifest = server.remote_dir("site/.ftpsync-manifest.json");
    let files = || {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap())
            .expect("the manifest is JSON");
        m["files"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(files(), ["a.txt"]);

    // Same size: the content tells.
    local.write("a.txt", "two");
    local.write("b.txt", "new");
    let cycle = mirror.cycle_with_changes(Duration::from_secs(5));
    assert_eq!(cycle["files_uploaded"], 2, "{cycle}");
    assert_eq!(cycle["compare"], "checksum", "{cycle}");
    assert_eq!(files(), ["a.txt", "b.txt"]);
    assert_eq!(mirror.terminate(), Some(0), "a clean stop exits 0");
}

// A cycle on the changed paths only must keep what the manifest says of the others.
#[test]
fn with_checksum_watch_cycles_keep_the_manifest_entries_they_did_not_look_at() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("a/one.txt", "one");
    local.write("b/two.txt", "two");
    let args = ["-c", "--watch", "--debounce", "200ms", "--delete"];
    let mirror = Mirror::start(&local, &server.url("site"), &args);
    let first = mirror.next_cycle(Duration::from_secs(30));
    assert_eq!(first["files_uploaded"], 2, "{first}");
    local.write("b/two.txt", "TWO");
    local.write("b/three.txt", "three");
    // However the events fall into cycles, each looks at b/ only, and a/ must stay recorded.
    let manifest = server.remote_dir("site/.ftpsync-manifest.json");
    let two = blake3::hash(b"TWO").to_hex().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    let m = loop {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        if m["files"]["b/three.txt"].is_object() && m["files"]["b/two.txt"]["blake3"] == two {
            break m;
        }
        assert!(Instant::now() < deadline, "{m}\n{}", mirror.stderr_so_far());
        std::thread::sleep(Duration::from_millis(100));
    };
    let files: Vec<_> = m["files"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(files, ["a/one.txt", "b/three.txt", "b/two.txt"], "{m}");
    assert_eq!(mirror.terminate(), Some(0));
}

#[test]
fn a_cycle_slower_than_the_period_is_followed_at_once_without_overlap() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("slow.txt", "stalls once");
    let stall = Fault::StallOn {
        command: "STOR".into(),
        path: "slow".into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![stall]);
    let mirror = Mirror::start(
        &local,
        &proxy.url(&server.url("")),
        &["--every", "1s", "--timeout", "3"],
    );
    let first = mirror.next_cycle(Duration::from_secs(30));
    let second = mirror.next_cycle(Duration::from_secs(30));
    assert!(first["elapsed_secs"].as_f64().unwrap() >= 3.0, "{first}");
    assert_eq!(
        (first["cycle"].as_u64(), second["cycle"].as_u64()),
        (Some(1), Some(2))
    );
    let notices = mirror.stderr_so_far();
    assert!(notices.contains("longer than the period"), "{notices}");
    // One run at a time: the proxy never saw more connections than one cycle opens.
    assert!(
        proxy.peak_connections() <= 4,
        "cycles overlapped: {}",
        proxy.peak_connections()
    );
    assert_mirror(local.path(), &server.remote_dir(""));
}

#[test]
fn watch_mirrors_creations_changes_deletions_and_renames() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("keep/a.txt", "a");
    local.write("old/x.txt", "x");
    let mirror = Mirror::start(
        &local,
        &server.url(""),
        &["--watch", "--debounce", "200ms", "--delete"],
    );
    mirror.next_cycle(Duration::from_secs(30));
    assert_mirror(local.path(), &server.remote_dir(""));

    local.write("keep/a.txt", "changed a");
    local.write("new/deep/n.txt", "n");
    local.remove("old");
    std::fs::rename(local.join("keep"), local.join("kept")).unwrap();
    converges(
        &mirror,
        &local,
        &server.remote_dir(""),
        Duration::from_secs(10),
    );
    drop(mirror);
}

#[test]
fn a_burst_of_writes_gives_few_cycles() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("seed.txt", "s");
    let mirror = Mirror::start(&local, &server.url(""), &["--watch", "--debounce", "1s"]);
    mirror.next_cycle(Duration::from_secs(30));
    for i in 0..1000 {
        local.write(&format!("burst/{}/f{i}.txt", i % 10), format!("{i}"));
    }
    converges(
        &mirror,
        &local,
        &server.remote_dir(""),
        Duration::from_secs(30),
    );
    let cycles = mirror.cycles.try_iter().count();
    assert!(
        (1..=3).contains(&cycles),
        "1000 writes gave {cycles} cycles"
    );
}

#[test]
fn idle_between_cycles_costs_no_cpu() {
    let server = FtpServer::start();
    let local = Tree::new();
    for i in 0..200 {
        local.write(&format!("d{}/f{i}", i % 10), "x");
    }
    let mirror = Mirror::start(&local, &server.url(""), &["--watch", "--every", "1h"]);
    mirror.next_cycle(Duration::from_secs(30));
    let pid = mirror.child.id();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(4)); // the idle window being measured
    let used = cpu_ticks(pid) - before;
    // Clock ticks are 10 ms: 3 ticks in 4 s is 0.75 % of one core, far above what sleeping costs.
    assert!(used <= 3, "used {used} ticks of CPU while idle");
}

#[test]
fn sigterm_during_an_upload_finishes_it_and_exits_0() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("small.txt", "s");
    for i in 0..40 {
        local.write(&format!("big/{i}.bin"), vec![i as u8; 2 * 1024 * 1024]);
    }
    let mirror = Mirror::start(&local, &server.url(""), &["--every", "1h", "-j", "1"]);
    // Wait until the first big file has arrived, then stop.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(server.remote_dir("big"))
        .map(|d| d.count())
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(mirror.terminate(), Some(0));
    for entry in std::fs::read_dir(server.remote_dir("big")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".ftpsync-tmp") {
            assert_eq!(
                entry.metadata().unwrap().len(),
                2 * 1024 * 1024,
                "{name} is partial"
            );
        }
    }
}

#[test]
fn a_server_restart_between_cycles_does_not_stop_the_process() {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), vec![]);
    let local = Tree::new();
    local.write("a.txt", "a");
    let mirror = Mirror::start(&local, &proxy.url(&server.url("")), &["--every", "1s"]);
    mirror.next_cycle(Duration::from_secs(30));
    proxy.set_down(true);
    local.write("b.txt", "b");
    // Let at least one cycle meet the server down (it is logged, not fatal).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !mirror.stderr_so_far().contains("failed") {
        assert!(Instant::now() < deadline, "no cycle met the server down");
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.set_down(false);
    let cycle = mirror.cycle_with_changes(Duration::from_secs(10));
    assert_eq!(cycle["files_uploaded"], 1, "{cycle}");
    assert_mirror(local.path(), &server.remote_dir(""));
}

impl Mirror {
    /// Waits (bounded) until stderr holds `text`.
    fn wait_for_notice(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stderr_so_far().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} on stderr in time:\n{}",
                self.stderr_so_far()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

// Regression: `rm -rf site/*` under --watch --delete deleted everything on the server (the
// empty-source guard held only in full cycles).
#[test]
fn watch_never_empties_the_server_when_the_local_folder_is_emptied() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("index.html", "home");
    local.write("css/site.css", "body{}");
    let mirror = Mirror::start(
        &local,
        &server.url(""),
        &["--watch", "--debounce", "200ms", "--delete"],
    );
    mirror.next_cycle(Duration::from_secs(30));
    assert_mirror(local.path(), &server.remote_dir(""));
    local.remove("index.html");
    local.remove("css");
    mirror.wait_for_notice("is empty", Duration::from_secs(20));
    assert!(server.remote_dir("index.html").exists());
    assert!(server.remote_dir("css/site.css").exists());
}

#[test]
fn max_delete_holds_in_event_cycles() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("keep.txt", "k");
    for i in 0..4 {
        local.write(&format!("old/{i}.txt"), "o");
    }
    let mirror = Mirror::start(
        &local,
        &server.url(""),
        &[
            "--watch",
            "--debounce",
            "200ms",
            "--delete",
            "--max-delete",
            "2",
        ],
    );
    mirror.next_cycle(Duration::from_secs(30));
    local.remove("old");
    mirror.wait_for_notice("more than --max-delete 2", Duration::from_secs(20));
    for i in 0..4 {
        assert!(server.remote_dir(&format!("old/{i}.txt")).exists());
    }
}

#[test]
fn watch_survives_the_local_folder_being_removed_and_created_again() {
    let server = FtpServer::start();
    let local = Tree::new();
    local.write("a.txt", "a");
    let mirror = Mirror::start(
        &local,
        &server.url(""),
        &["--watch", "--debounce", "200ms", "--delete", "-v"],
    );
    mirror.next_cycle(Duration::from_secs(30));
    std::fs::remove_dir_all(local.path()).unwrap();
    mirror.wait_for_notice("does not exist", Duration::from_secs(20));
    assert!(
        server.remote_dir("a.txt").exists(),
        "nothing destructive while the folder is gone"
    );
    // Back in one step, as a build tool that renames its output into place does.
    let staging = local.path().with_extension("new");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("b.txt"), "back").unwrap();
    std::fs::rename(&staging, local.path()).unwrap();
    converges(
        &mirror,
        &local,
        &server.remote_dir(""),
        Duration::from_secs(60),
    );
    local.write("c.txt", "and watched again");
    converges(
        &mirror,
        &local,
        &server.remote_dir(""),
        Duration::from_secs(60),
    );
}
