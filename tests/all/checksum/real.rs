//! `--checksum` against the real servers: vsftpd (LIST, minute times), pure-ftpd (MLSD), and
//! proftpd over TLS, which has mod_digest: without a manifest, it hashes same-size files
//! itself (`XSHA256`, `HASH`).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::{
    ci_deploy, ci_loop, corrupt_manifest_stops_the_deploy, killed_half_way,
    manifest_outside_the_folder, site, uploaded, Server, MANIFEST, SITE_FILES,
};
use crate::support::{ftpsync, real_servers, run};

/// vsftpd and pure-ftpd (plain FTP), and proftpd with explicit TLS, each on a fresh folder.
fn servers(test: &str) -> Vec<Server> {
    let mut all: Vec<Server> = real_servers()
        .into_iter()
        .map(|real| {
            let (url, dir) = real.scratch(test);
            Server {
                name: real.name,
                url,
                dir,
                extra: Vec::new(),
                _server: None,
            }
        })
        .collect();
    all.extend(proftpd(test));
    all
}

/// proftpd with explicit TLS, from `FTPSYNC_TEST_PROFTPD_TLS_*`.
fn proftpd(test: &str) -> Option<Server> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let found = (
        var("FTPSYNC_TEST_PROFTPD_TLS_URL"),
        var("FTPSYNC_TEST_PROFTPD_TLS_ROOT"),
        var("FTPSYNC_TEST_TLS_CA"),
    );
    let (Some(url), Some(root), Some(ca)) = found else {
        if std::env::var("FTPSYNC_REQUIRE_REAL_SERVERS").is_ok_and(|v| v == "1") {
            panic!("FTPSYNC_REQUIRE_REAL_SERVERS=1 but the proftpd TLS variables are not set");
        }
        eprintln!("notice: proftpd --checksum tests skipped (scripts/test-servers.sh start)");
        return None;
    };
    let dir = PathBuf::from(root).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    Some(Server {
        name: "proftpd",
        url: format!("{}/{test}", url.trim_end_matches('/')),
        dir,
        extra: vec!["--ca-file".into(), ca],
        _server: None,
    })
}

#[test]
#[ignore = "needs the real FTP servers: scripts/test-servers.sh start"]
fn ci_loop_on_the_real_servers() {
    for server in servers("checksum_ci") {
        ci_loop(&server);
    }
}

#[test]
#[ignore = "needs the real FTP servers: scripts/test-servers.sh start"]
fn the_manifest_outside_the_web_root_on_the_real_servers() {
    for server in servers("checksum_outside") {
        manifest_outside_the_folder(&server, "checksum_outside");
    }
}

#[test]
#[ignore = "needs the real FTP servers: scripts/test-servers.sh start"]
fn a_deploy_killed_half_way_on_the_real_servers_resumes_from_its_last_checkpoint() {
    // Plain FTP only: the proxy that holds an upload's end cannot read TLS.
    for server in servers("checksum_killed")
        .into_iter()
        .filter(|s| s.extra.is_empty())
    {
        killed_half_way(&server);
    }
}

#[test]
#[ignore = "needs the real FTP servers: scripts/test-servers.sh start"]
fn a_corrupt_or_unreadable_manifest_exits_2_on_the_real_servers() {
    for server in servers("checksum_corrupt") {
        corrupt_manifest_stops_the_deploy(&server);
        let name = server.name;
        // Readable by root only: the server lists it but cannot read it.
        let manifest = server.dir.join(MANIFEST);
        std::fs::write(&manifest, "{}").unwrap();
        std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o000)).unwrap();
        let run = ci_deploy(&site(), &server, &[]);
        assert_eq!(run.code, 2, "{name}: {run}");
        assert!(
            run.summary["error"].as_str().unwrap().contains("manifest"),
            "{name}: {run}"
        );
        assert!(uploaded(&run).is_empty(), "{name}: {run}");
    }
}

#[test]
#[ignore = "needs the real FTP servers: scripts/test-servers.sh start"]
fn proftpd_hashes_same_size_files_when_there_is_no_manifest() {
    let Some(server) = proftpd("checksum_server_hash") else {
        return;
    };
    let source = site();
    // Put there by something else: no manifest.
    let mut cmd = ftpsync();
    cmd.args(["--json"])
        .args(&server.extra)
        .arg(source.path())
        .arg(&server.url);
    let plain = run(&mut cmd);
    assert_eq!(plain.code, 0, "{plain}");
    assert!(!server.dir.join(MANIFEST).exists());
    // Same size, different content: only the server's hash tells.
    source.write("page7.html", "<h1>PAGE 07</h1>\n");
    let run = ci_deploy(&source, &server, &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(uploaded(&run), ["page7.html"], "{run}");
    // All but the empty file, which needs no hash.
    assert_eq!(run.summary["compared_by_hash"], SITE_FILES - 1, "{run}");
    let files = server.manifest()["files"].clone();
    assert!(
        files["page1.html"].get("adopted").is_none(),
        "hashed, not adopted: {files}"
    );
    let next = ci_deploy(&source, &server, &[]);
    assert_eq!(next.summary["files_uploaded"], 0, "{next}");
}

/// A manifest the server cannot read, in a folder it cannot list (`-wx`: the listing shows
/// nothing): the listing cannot tell it exists, the server's SIZE does. Exit 2, nothing
/// uploaded, the manifest left as it was: never a first deploy that overwrites it.
#[test]
#[ignore = "needs the real FTP servers: scripts/test-servers.sh start"]
fn an_unreadable_manifest_in_an_unlistable_folder_is_not_a_first_deploy() {
    use std::os::unix::fs::MetadataExt;
    let test = "checksum_unlisted";
    for server in servers(test) {
        let name = server.name;
        // Writable by the server's user, as folders it creates are.
        std::fs::create_dir_all(server.dir.join("private")).unwrap();
        let owner = std::fs::metadata(server.dir.parent().unwrap())
            .unwrap()
            .uid();
        std::os::unix::fs::chown(&server.dir, Some(owner), None).unwrap();
        let manifest = server.dir.join("private/m.json");
        std::fs::write(&manifest, "{}").unwrap();
        std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o000)).unwrap();
        let private = server.dir.join("private");
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o333)).unwrap();
        let mut extra = server.extra.clone();
        extra.extend(["--manifest".into(), format!("{test}/private/m.json")]);
        let web = Server {
            url: format!("{}/www", server.url),
            extra,
            dir: server.dir.join("www"),
            ..server
        };
        let run = ci_deploy(&site(), &web, &["--adopt"]);
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(run.code, 2, "{name}: {run}");
        let error = run.summary["error"].as_str().unwrap();
        assert!(
            error.contains("cannot read the --checksum manifest"),
            "{name}: {run}"
        );
        assert!(uploaded(&run).is_empty(), "{name}: {run}");
        assert_eq!(
            std::fs::read(&manifest).unwrap(),
            b"{}",
            "{name}: overwritten"
        );
    }
}
