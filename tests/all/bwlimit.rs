//! `--bwlimit`: the file bytes of all connections together go no faster than the limit, on the
//! in-process server (the figure: 2M holds within 10% over 10 s, uploads and downloads)
//! and on the real plain servers. The real TLS case is in `ftps/real.rs` (it needs its certificates).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::faults::FaultProxy;
use crate::support::{assert_mirror, real_servers, sync, FtpServer, Run, Tree};

const MIB: u64 = 1 << 20;

/// A tree of large files of `big` MiB each (sent with sendfile(2) from a blocking thread) and
/// `small` files of 256 KiB (sent from the worker's task); returns it with its size in bytes.
pub fn limited_tree(big: &[u64], small: u64) -> (Tree, u64) {
    let tree = Tree::new();
    let total = write_limited_tree(tree.path(), big, small);
    (tree, total)
}

/// Writes the files of [`limited_tree`] under `root`; returns their size in bytes.
fn write_limited_tree(root: &Path, big: &[u64], small: u64) -> u64 {
    let content =
        |len: u64, seed: u64| -> Vec<u8> { (0..len).map(|i| (i / 4096 + seed) as u8).collect() };
    let write = |rel: String, bytes: Vec<u8>| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    for (i, &mib) in big.iter().enumerate() {
        write(format!("big/{i}.bin"), content(mib * MIB, i as u64));
    }
    for i in 0..small {
        write(format!("small/{i}.bin"), content(MIB / 4, i));
    }
    big.iter().sum::<u64>() * MIB + small * MIB / 4
}

/// Runs [`sync`] and times it.
pub fn timed_sync(tree: &Tree, url: &str, args: &[&str]) -> (Run, Duration) {
    let start = Instant::now();
    let run = sync(tree.path(), url, args);
    (run, start.elapsed())
}

/// Asserts that `bytes` at `rate` bytes per second took `elapsed`, within 10% (and, for short
/// runs, the half second a run takes to connect, list and finish).
pub fn assert_paced(elapsed: Duration, bytes: u64, rate: u64, label: &str) {
    let expected = bytes as f64 / rate as f64;
    let (low, high) = (expected * 0.9, expected * 1.1 + 0.5);
    let took = elapsed.as_secs_f64();
    assert!(
        (low..=high).contains(&took),
        "{label}: {bytes} bytes at {rate} B/s took {took:.2} s, not {low:.2} to {high:.2} s"
    );
}

/// The acceptance figure, over four connections: 20 MiB with `--bwlimit 2M` takes 10 s
/// within 10%, so the limit is shared, not per connection (that would be 2.5 s).
#[test]
fn a_2m_limit_over_4_connections_holds_within_10_percent_over_10_seconds() {
    let server = FtpServer::start();
    let (tree, bytes) = limited_tree(&[6, 6, 6], 8);
    assert_eq!(bytes, 20 * MIB);
    let pushed = |url: &str| {
        let (run, elapsed) = timed_sync(&tree, url, &["-j", "4", "--bwlimit", "2M"]);
        assert_eq!(run.summary["files_uploaded"], 11, "{run}");
        (run, elapsed)
    };
    assert_2m_over_4_connections(&server, "STOR ", pushed);
    assert_mirror(tree.path(), &server.remote_dir("site"));
}

/// The same figure for a pull: every downloaded byte takes from the same limit.
#[test]
fn a_pull_keeps_to_a_2m_limit_over_4_connections_within_10_percent() {
    let server = FtpServer::start();
    let bytes = write_limited_tree(&server.remote_dir("site"), &[6, 6, 6], 8);
    assert_eq!(bytes, 20 * MIB);
    let local = Tree::new();
    let pulled = |url: &str| {
        let start = Instant::now();
        let run = crate::pull::pull(url, local.path(), &["-j", "4", "--bwlimit", "2M"]);
        assert_eq!(run.summary["files_downloaded"], 11, "{run}");
        (run, start.elapsed())
    };
    assert_2m_over_4_connections(&server, "RETR ", pulled);
    assert_mirror(local.path(), &server.remote_dir("site"));
}

/// Runs `transfer` (20 MiB in 11 files, `-j 4 --bwlimit 2M`) through a proxy in front of
/// `server`'s folder `site`, and asserts it took 10 s within 10%, over several connections,
/// each file going once (`command`: STOR or RETR).
fn assert_2m_over_4_connections(
    server: &FtpServer,
    command: &str,
    transfer: impl FnOnce(&str) -> (Run, Duration),
) {
    // The proxy passes commands on one at a time: libunftp sometimes runs a pipelined RNFR and
    // RNTO out of order, and the upload refused then goes again, which would double the time.
    let proxy = FaultProxy::start(&server.addr(), vec![]);
    let (run, elapsed) = transfer(&proxy.url(&server.url("site")));
    assert_eq!(run.code, 0, "{run}");
    let took = elapsed.as_secs_f64();
    assert!(
        (9.0..=11.0).contains(&took),
        "20 MiB at 2 MiB/s took {took:.2} s, not 10 s within 10%: {run}"
    );
    assert!(
        proxy.peak_connections() >= 2,
        "the files went over several connections"
    );
    let transfers = proxy.commands();
    let transfers = transfers.iter().filter(|c| c.starts_with(command));
    assert_eq!(
        transfers.count(),
        11,
        "each file went once: the time is 20 MiB's"
    );
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_keep_to_the_limit() {
    for server in real_servers() {
        let (url, dir) = server.scratch("bwlimit");
        let (tree, bytes) = limited_tree(&[1, 1], 4);
        let (run, elapsed) = timed_sync(&tree, &url, &["-j", "3", "--bwlimit", "1M"]);
        assert_eq!(run.code, 0, "{}: {run}", server.name);
        assert_mirror(tree.path(), &dir);
        assert_paced(elapsed, bytes, MIB, server.name);
    }
}
