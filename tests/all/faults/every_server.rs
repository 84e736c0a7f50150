//! Each fault in front of every server, the in-process one and each real one; most through
//! [`cell`](super::cell): a run with the fault, then a clean rerun that must converge.

use crate::support::faults::{Fault, FaultProxy};
use crate::support::{assert_mirror, Tree};

use super::{cell, sync_through, tree, upstreams};

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

/// A server that answers commands sent during a transfer, found out by one probe: the fault
/// fires once, and the run says that checks no longer travel behind transfers.
fn one_probe_tells(test: &str, fault: Fault) {
    cell(test, vec![fault], &["-j", "1", "-vv"], |up, proxy, run| {
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
    });
}

#[test]
fn a_server_answering_commands_during_transfers_gets_none_behind_its_transfers() {
    // pure-ftpd reads the control connection while a transfer runs and answers what it finds
    // there with 500. The one NOOP that finds this out is the only command it ever sees there.
    one_probe_tells("fault_answer_during_transfer", Fault::AnswerDuringTransfer);
}

#[test]
fn a_server_answering_the_probe_before_the_transfer_opens_gets_one_probe() {
    // A server that runs commands side by side answers the NOOP behind a STOR before the 150.
    // That one answer tells: no more probes, and no checks behind later transfers.
    one_probe_tells("fault_answer_probe_first", Fault::AnswerProbeFirst);
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
