//! Fault injection: each fault, on the in-process server and on the real servers, behind the
//! fault proxy. For every cell: the run ends with the documented exit code and names the file,
//! no final name holds a partial file, the local tree is untouched, and a second run without the
//! fault converges to an exact mirror.
//!
//! The parts: `every_server.rs` (each fault in every cell), `bounded.rs` (runs end in bounded
//! time and memory whatever the server sends), `in_process.rs` (faults whose handling does not
//! depend on the server). The cell machinery is here.

mod bounded;
mod every_server;
mod in_process;

use std::path::PathBuf;

use crate::support::faults::{Fault, FaultProxy};
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
