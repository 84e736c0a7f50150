//! A pull never writes or removes anything outside LOCAL_DIR, whatever the server lists or the
//! local tree holds, and never leaves a partial file at a final name, even when killed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pull;
use crate::support::faults::{Fault, FaultProxy, Listing};
use crate::support::{self, assert_mirror, FtpServer, Tree};

#[test]
fn hostile_remote_names_never_escape_the_local_folder() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.remote_dir("site")).unwrap();
    std::fs::write(server.remote_dir("site/ok.txt"), "1").unwrap();
    const NAMES: &[&str] = &[
        "../escape.txt",
        "sub/../../x.txt",
        "..",
        "back\\slash.txt",
        "bell\u{7}.txt",
        "ok.txt",
    ];
    let (any, always) = (String::new(), usize::MAX);
    let serve = Fault::ServeListing {
        listing: Listing::Names(NAMES),
        command: any.clone(),
        path: any.clone(),
        times: always,
    };
    // Listings over the control connection would bypass the served one.
    let reply = "502 Command not implemented".to_string();
    let stat = "STAT".to_string();
    let no_stat = Fault::Reply {
        command: stat,
        path: any,
        reply,
        times: always,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![serve, no_stat]);
    let outer = Tree::new();
    let dest = outer.join("in/dest");
    let run = pull(&proxy.url(&server.url("site")), &dest, &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["skipped_remote"], 4, "{run}");
    assert_eq!(std::fs::read(dest.join("ok.txt")).unwrap(), b"1");
    let everything: Vec<String> = support::snapshot(outer.path()).into_keys().collect();
    assert_eq!(everything, ["in/dest/ok.txt"]);
}

#[test]
fn names_equal_but_for_case_are_skipped_and_their_local_namesake_kept() {
    let server = FtpServer::start();
    let remote = server.remote_dir("site");
    std::fs::create_dir_all(&remote).unwrap();
    for (name, text) in [("A.txt", "upper"), ("a.txt", "lower"), ("b.txt", "b")] {
        std::fs::write(remote.join(name), text).unwrap();
    }
    let local = Tree::new();
    local.write("a.txt", "mine");
    let run = pull(&server.url("site"), local.path(), &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["skipped_remote"], 2, "{run}");
    assert!(run.stderr.contains("differs only in case"), "{run}");
    assert_eq!(
        std::fs::read_to_string(local.join("a.txt")).unwrap(),
        "mine"
    );
    assert!(!local.join("A.txt").exists());
    assert_eq!(std::fs::read_to_string(local.join("b.txt")).unwrap(), "b");
}

#[test]
fn local_symbolic_links_are_never_written_through() {
    let server = FtpServer::start();
    let remote = server.remote_dir("site");
    std::fs::create_dir_all(remote.join("docs")).unwrap();
    std::fs::write(remote.join("docs/x.txt"), "remote").unwrap();
    std::fs::write(remote.join("f.txt"), "remote f").unwrap();
    support::set_mtime(&remote.join("docs"), 1_000_000_000);
    let outside = Tree::new();
    outside.write("target.txt", "outside");
    let local = Tree::new();
    std::os::unix::fs::symlink(outside.path(), local.join("docs")).unwrap();
    std::os::unix::fs::symlink(outside.join("target.txt"), local.join("f.txt")).unwrap();
    let run = pull(&server.url("site"), local.path(), &["--delete"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("symbolic link"), "{run}");
    let outside_now: Vec<String> = support::snapshot(outside.path()).into_keys().collect();
    assert_eq!(
        outside_now,
        ["target.txt"],
        "nothing written into the link's target"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("target.txt")).unwrap(),
        "outside"
    );
    // The link at a file's name is replaced, not written through.
    let f = std::fs::symlink_metadata(local.join("f.txt")).unwrap();
    assert!(f.is_file(), "{f:?}");
    assert_eq!(
        std::fs::read_to_string(local.join("f.txt")).unwrap(),
        "remote f"
    );
    assert!(std::fs::symlink_metadata(local.join("docs"))
        .unwrap()
        .is_symlink());
    // Nor is the remote folder's time given through it.
    assert_ne!(support::mtime(outside.path()), 1_000_000_000);
}

/// Files whose sizes `check` expects, at any moment, at their final names.
fn short_final_files(dest: &Path, sizes: &[(&str, u64)]) -> Vec<String> {
    sizes
        .iter()
        .filter_map(|(rel, size)| {
            let len = std::fs::metadata(dest.join(rel)).ok()?.len();
            (len != *size).then(|| format!("{rel}: {len} of {size} bytes"))
        })
        .collect()
}

/// The largest temporary file in `dest`, in bytes.
fn temp_bytes(dest: &Path) -> u64 {
    std::fs::read_dir(dest)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ftpsync-tmp"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_pull_killed_during_large_downloads_resumes_and_never_shows_a_partial_file() {
    const SIZE: u64 = 48 * 1024 * 1024;
    let server = FtpServer::start();
    let remote = server.remote_dir("big");
    std::fs::create_dir_all(&remote).unwrap();
    let names = ["one.bin", "two.bin", "three.bin"];
    for (i, name) in names.iter().enumerate() {
        let bytes: Vec<u8> = (0..SIZE).map(|b| (b % 251) as u8 ^ i as u8).collect();
        std::fs::write(remote.join(name), bytes).unwrap();
    }
    let sizes: Vec<(&str, u64)> = names.iter().map(|n| (*n, SIZE)).collect();
    let local = Tree::new();
    let dest = local.path().to_path_buf();
    let done = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let watcher = {
        let (done, seen, dest, sizes) = (done.clone(), seen.clone(), dest.clone(), sizes.clone());
        let sizes: Vec<(String, u64)> = sizes.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        std::thread::spawn(move || {
            let sizes: Vec<(&str, u64)> = sizes.iter().map(|(n, s)| (n.as_str(), *s)).collect();
            while !done.load(Ordering::Relaxed) {
                seen.lock()
                    .unwrap()
                    .extend(short_final_files(&dest, &sizes));
                std::thread::yield_now();
            }
        })
    };
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    support::isolate_env(&mut cmd);
    let mut child = cmd
        .args(["-q", "-j", "2"])
        .arg(server.url("big"))
        .arg(&dest)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while temp_bytes(&dest) == 0 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = temp_bytes(&dest);
    assert!(kept > 0, "killed while a download was under way");

    let run = pull(&server.url("big"), &dest, &["-j", "2"]);
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(&dest, &remote);
    let received = run.summary["bytes_downloaded"].as_u64().unwrap();
    assert!(
        received < 3 * SIZE,
        "the rerun fetched only what was missing ({received} bytes)"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        Vec::<String>::new(),
        "partial files at final names"
    );
}
