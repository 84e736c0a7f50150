//! FTPS against the real servers started by `scripts/test-servers.sh`: vsftpd and proftpd, both
//! refusing data connections that do not resume the control connection's TLS session, in both
//! modes and with each TLS version.

use std::path::PathBuf;

use crate::support::{assert_mirror, changed_files, snapshot, sync, RealServer};

use super::{site_tree, Mode};

/// The TLS instances of `name` (`VSFTPD` or `PROFTPD`) from `FTPSYNC_TEST_<name>_TLS_*`, with
/// the CA that signed their certificate; None (with a notice) when not configured, a panic when
/// `FTPSYNC_REQUIRE_REAL_SERVERS=1`.
fn real_tls_server(name: &'static str) -> Option<(Vec<(Mode, RealServer)>, String)> {
    let var = |suffix: &str| {
        let key = format!("FTPSYNC_TEST_{suffix}");
        std::env::var(&key)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(key)
    };
    let found = (|| {
        let root = PathBuf::from(var(&format!("{name}_TLS_ROOT"))?);
        let mut servers = Vec::new();
        for (mode, suffix) in [
            (Mode::Explicit, "TLS_URL"),
            (Mode::Implicit, "TLS_IMPLICIT_URL"),
        ] {
            let url = var(&format!("{name}_{suffix}"))?;
            let url = if url.ends_with('/') {
                url
            } else {
                format!("{url}/")
            };
            let root = root.clone();
            servers.push((mode, RealServer { name, url, root }));
        }
        Ok::<_, String>((servers, var("TLS_CA")?))
    })();
    match found {
        Ok(found) => Some(found),
        Err(missing) if std::env::var("FTPSYNC_REQUIRE_REAL_SERVERS").is_ok_and(|v| v == "1") => {
            panic!("FTPSYNC_REQUIRE_REAL_SERVERS=1 but {missing} is not set (scripts/test-servers.sh start)")
        }
        Err(missing) => {
            eprintln!("notice: {name} FTPS tests skipped: {missing} is not set");
            None
        }
    }
}

/// With 8 workers: a first sync of a few hundred files, a rerun that uploads nothing, and a
/// sync with deletes, each checked byte for byte on the server's disk.
fn first_sync_rerun_and_deletes(server: &RealServer, label: &str, args: &[&str]) {
    let (url, dir) = server.scratch(&format!("ftps_{label}"));
    let tree = site_tree(300);
    let args = [&["-j", "8"][..], args].concat();
    let run = sync(tree.path(), &url, &args);
    assert_eq!(run.code, 0, "{label}: {run}");
    assert_eq!(run.summary["files_uploaded"], 302, "{label}: {run}");
    assert_mirror(tree.path(), &dir);

    let before = snapshot(&dir);
    let rerun = sync(tree.path(), &url, &args);
    assert_eq!(rerun.code, 0, "{label}: {rerun}");
    assert_eq!(rerun.summary["files_uploaded"], 0, "{label}: {rerun}");
    assert_eq!(
        changed_files(&before, &snapshot(&dir)),
        Vec::<String>::new(),
        "{label}"
    );

    tree.remove("dir3");
    tree.remove("big/large.bin");
    tree.write("dir4/new.bin", b"new");
    let with_delete = [&args[..], &["--delete"]].concat();
    let run = sync(tree.path(), &url, &with_delete);
    assert_eq!(run.code, 0, "{label}: {run}");
    assert_eq!(run.summary["files_uploaded"], 1, "{label}: {run}");
    assert_eq!(
        run.summary["deleted"], 32,
        "{label}: dir3, its 30 files, large.bin: {run}"
    );
    assert_mirror(tree.path(), &dir);
}

/// Each mode (explicit, implicit) with each TLS version: negotiated, pinned to 1.2, to 1.3.
fn every_mode_and_version(name: &'static str) {
    let Some((servers, ca)) = real_tls_server(name) else {
        return;
    };
    for (mode, server) in &servers {
        for version in [None, Some("1.2"), Some("1.3")] {
            let label = format!(
                "{mode:?}_{}",
                version.map_or("negotiated".into(), |v| format!("tls{v}"))
            )
            .to_lowercase();
            let mut args = vec!["--ca-file", ca.as_str()];
            if let Some(version) = version {
                args.extend(["--tls-version", version]);
            }
            first_sync_rerun_and_deletes(server, &format!("{name}_{label}"), &args);
        }
    }
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_vsftpd_with_required_session_reuse_in_every_mode_and_tls_version() {
    every_mode_and_version("VSFTPD");
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_proftpd_with_required_session_reuse_in_every_mode_and_tls_version() {
    every_mode_and_version("PROFTPD");
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_vsftpd_keeps_to_the_bandwidth_limit_over_tls() {
    use crate::bwlimit::{assert_paced, limited_tree, timed_sync};
    let Some((servers, ca)) = real_tls_server("VSFTPD") else {
        return;
    };
    for (mode, server) in &servers {
        let (url, dir) = server.scratch(&format!("ftps_bwlimit_{mode:?}"));
        let (tree, bytes) = limited_tree(&[1, 1], 4);
        let args = ["-j", "3", "--bwlimit", "1M", "--ca-file", &ca];
        let (run, elapsed) = timed_sync(&tree, &url, &args);
        assert_eq!(run.code, 0, "{mode:?}: {run}");
        assert_mirror(tree.path(), &dir);
        assert_paced(elapsed, bytes, 1 << 20, &format!("vsftpd {mode:?}"));
    }
}

/// Over TLS as over plain FTP, uploads on a connection are chained, their checks travelling
/// behind the transfer once the server is found to leave them for after it (the run says so with
/// `-vv`), and every file arrives whole.
fn uploads_are_chained_over_tls(name: &'static str) {
    let Some((servers, ca)) = real_tls_server(name) else {
        return;
    };
    let (_, server) = &servers[0];
    let (url, dir) = server.scratch(&format!("ftps_chained_{name}"));
    let tree = crate::support::Tree::new();
    for i in 0..40 {
        tree.write(&format!("f{i:02}.txt"), format!("file {i}\n").repeat(i + 1));
    }
    let run = sync(tree.path(), &url, &["-j", "1", "-vv", "--ca-file", &ca]);
    assert_eq!(run.code, 0, "{name}: {run}");
    assert_eq!(run.summary["files_uploaded"], 40, "{name}: {run}");
    assert!(
        run.stderr.contains("checks travel before the 226"),
        "{name}: uploads were not chained over TLS: {run}"
    );
    assert_mirror(tree.path(), &dir);
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_vsftpd_chains_uploads_over_tls() {
    uploads_are_chained_over_tls("VSFTPD");
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_proftpd_chains_uploads_over_tls() {
    uploads_are_chained_over_tls("PROFTPD");
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_proftpd_gives_uploads_the_modes_chmod_asks_for() {
    let Some((servers, ca)) = real_tls_server("PROFTPD") else {
        return;
    };
    let (_, server) = &servers[0];
    crate::modes::uploads_get_the_modes_chmod_asks_for(server, &["--ca-file", &ca]);
}
