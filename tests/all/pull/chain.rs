//! Downloads in a chain: once a server showed that it keeps commands sent during a transfer for
//! after it, each download's PASV and RETR travel behind the transfer before it. A server that
//! reads them there (pure-ftpd) gets none after the one probe that finds out; one that starts
//! reading them only later loses no file: the download is tried again on a fresh connection.

use std::path::Path;

use super::pull;
use crate::support::faults::{Fault, FaultProxy};
use crate::support::{assert_mirror, real_servers, sync, FtpServer, Tree};

/// Downloads that could travel behind a transfer in a run of [`FILES`] on one connection: all
/// but the first, less the ten that find out whether the server keeps commands for after a
/// transfer (each with a NOOP behind it, which also waits there). More than the probes alone.
const FILES: usize = 60;
const CHAINED_AT_LEAST: usize = 30;

/// Writes [`FILES`] small files of different sizes under `root`.
fn small_files(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..FILES {
        let body = format!("file {i}\n").repeat(i + 1);
        std::fs::write(root.join(format!("f{i:02}.txt")), body).unwrap();
    }
}

/// Pulls [`FILES`] small files from the in-process server through a proxy with `faults`, on
/// one connection, with `-vv`; the run must be an exact mirror.
fn pull_through(faults: Vec<Fault>) -> (FaultProxy, crate::support::Run) {
    pull_through_with(faults, &[])
}

/// [`pull_through`] with `extra` options.
fn pull_through_with(faults: Vec<Fault>, extra: &[&str]) -> (FaultProxy, crate::support::Run) {
    let server = FtpServer::start();
    small_files(&server.remote_dir("chain"));
    let proxy = FaultProxy::start(&server.addr(), faults);
    let local = Tree::new();
    let url = proxy.url(&server.url("chain"));
    let options = [&["-j", "1", "-vv"], extra].concat();
    let run = pull(&url, local.path(), &options);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_downloaded"], FILES, "{run}");
    assert_eq!(run.summary["failed"], 0, "{run}");
    assert_mirror(local.path(), &server.remote_dir("chain"));
    (proxy, run)
}

#[test]
fn downloads_travel_behind_the_transfer_before_them_once_the_server_keeps_them() {
    // The proxy reads a command only after the one before it ended, as vsftpd does.
    let (proxy, _) = pull_through(vec![]);
    let waiting = proxy.commands_waiting_at_transfer_end();
    assert!(
        waiting >= CHAINED_AT_LEAST,
        "only {waiting} transfers had the next download's commands behind them"
    );
}

/// Pulls through a proxy with `fault` (one that answers commands the server should keep for
/// after a transfer): only the first probe may meet it, and the chain is off for the run.
fn only_the_first_probe_meets(fault: Fault) {
    let (proxy, run) = pull_through(vec![fault]);
    assert_eq!(proxy.fired(0), 1, "{:?}", proxy.commands());
    assert!(
        run.stderr.contains("reads commands during transfers"),
        "{run}"
    );
}

#[test]
fn a_server_answering_commands_during_transfers_gets_no_download_behind_one() {
    // As pure-ftpd does: what it finds on the control connection during a transfer is
    // answered 500 and dropped.
    only_the_first_probe_meets(Fault::AnswerDuringTransfer);
}

#[test]
fn a_server_answering_commands_before_a_transfer_begins_gets_no_download_behind_one() {
    // What goes behind a RETR answered 500 in place of its 150, while the data connection
    // opens: not one probe a download, each spoiling it and costing a login.
    only_the_first_probe_meets(Fault::AnswerBeforeTransfer);
}

#[test]
fn a_server_swallowing_commands_sent_during_transfers_costs_one_wait_and_no_download() {
    // The first probe is never answered: its wait turns the chain off for the run, and the
    // download before it, whose 226 came, counts as it is (not tried again).
    let (proxy, run) = pull_through_with(vec![Fault::SwallowDuringTransfer], &["--timeout", "2"]);
    assert_eq!(proxy.fired(0), 1, "{:?}", proxy.commands());
    assert!(
        run.stderr.contains("reads commands during transfers"),
        "{run}"
    );
    assert!(!run.stderr.contains("download failed"), "{run}");
}

#[test]
fn a_server_that_starts_reading_commands_during_transfers_late_loses_no_file() {
    // The probes pass, downloads go behind transfers, then the server answers those with 500:
    // the download it spoilt is tried again on a fresh connection, and no more go behind.
    let (proxy, run) = pull_through(vec![Fault::AnswerDuringTransfersAfter(15)]);
    assert!(proxy.fired(0) >= 1, "{:?}", proxy.commands());
    assert!(
        run.stderr.contains("reads commands during transfers"),
        "{run}"
    );
}

#[test]
fn a_server_running_commands_side_by_side_gets_no_download_behind_a_transfer() {
    // libunftp answers a command sent during a transfer at once, not after it.
    let server = FtpServer::start();
    small_files(&server.remote_dir("chain"));
    let local = Tree::new();
    let run = pull(&server.url("chain"), local.path(), &["-j", "1", "-vv"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_downloaded"], FILES, "{run}");
    assert_mirror(local.path(), &server.remote_dir("chain"));
    assert!(
        run.stderr.contains("reads commands during transfers"),
        "{run}"
    );
}

/// Pulls [`FILES`] small files through a proxy that answers the `RETR` of `f20.txt` (sent
/// behind the transfer of `f21.txt`) with `reply`, `times` times; returns what the proxy saw
/// of the commands, the run, and where it went.
fn pull_answering_f20(reply: &str, times: usize) -> (Vec<String>, crate::support::Run, Tree) {
    let server = FtpServer::start();
    small_files(&server.remote_dir("chain"));
    let fault = Fault::Reply {
        command: "RETR".into(),
        path: "f20.txt".into(),
        reply: reply.into(),
        times,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![fault]);
    let local = Tree::new();
    let url = proxy.url(&server.url("chain"));
    let run = pull(&url, local.path(), &["-j", "1", "-vv"]);
    assert!(
        proxy.commands_waiting_at_transfer_end() >= CHAINED_AT_LEAST,
        "{run}"
    );
    // Every file came down whole, but f20 when it is refused for good.
    let others = std::fs::read_dir(server.remote_dir("chain")).unwrap();
    for entry in others.map(Result::unwrap) {
        let name = entry.file_name();
        let local = std::fs::read(local.path().join(&name));
        if name != "f20.txt" || times == 1 {
            assert_eq!(local.unwrap(), std::fs::read(entry.path()).unwrap());
        }
    }
    (proxy.commands(), run, local)
}

/// How many of `commands` start with `verb`.
fn count(commands: &[String], verb: &str) -> usize {
    commands.iter().filter(|c| c.starts_with(verb)).count()
}

#[test]
fn a_download_refused_behind_a_transfer_fails_alone_on_the_same_connection() {
    // Its RETR went behind the transfer before it: its 550 comes in its turn, the replies stay
    // in step, and the chain goes on without a fresh login.
    let (commands, run, local) = pull_answering_f20("550 Permission denied", usize::MAX);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.summary["files_downloaded"], FILES - 1, "{run}");
    assert_eq!(run.summary["failed"], 1, "{run}");
    assert!(!local.path().join("f20.txt").exists());
    assert_eq!(count(&commands, "USER"), 1, "{commands:?}");
}

#[test]
fn a_connection_given_up_with_a_download_sent_ahead_still_logs_out() {
    // f20 meets a passing refusal while f19 waits behind it: f20 is tried again on a fresh
    // connection, and the old one must not be left to the server half-way (vsftpd would wait a
    // minute for f19's data connection, one session more against its limits).
    let (commands, run, _local) = pull_answering_f20("450 Try again later", 1);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_downloaded"], FILES, "{run}");
    assert_eq!(count(&commands, "USER"), 2, "{commands:?}");
    assert_eq!(count(&commands, "QUIT"), 2, "{commands:?}");
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_chain_downloads_where_they_keep_commands_for_after_a_transfer() {
    for server in real_servers() {
        let (url, dir) = server.scratch("pull_chain");
        let source = Tree::new();
        small_files(source.path());
        assert_eq!(sync(source.path(), &url, &[]).code, 0, "{}", server.name);
        // Straight to the server: pure-ftpd must show what it does during transfers.
        let local = Tree::new();
        let run = pull(&url, local.path(), &["-j", "1", "-vv"]);
        assert_eq!(run.code, 0, "{}: {run}", server.name);
        assert_eq!(run.summary["files_downloaded"], FILES, "{}", server.name);
        assert_mirror(local.path(), &dir);
        let (kept, read) = (
            run.stderr
                .contains("downloads behind the transfer before them"),
            run.stderr.contains("reads commands during transfers"),
        );
        match server.name {
            "vsftpd" => assert!(kept && !read, "{}: {run}", server.name),
            _ => assert!(read && !kept, "{}: {run}", server.name),
        }
    }
}
