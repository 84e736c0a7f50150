//! `--checksum` under attack: what sits in the manifest's place (a local folder of its name,
//! a folder on the server), a manifest named by an absolute path that lies inside the remote
//! folder after all, and manifests a hostile server could hand over.

use super::{ci_deploy, site, uploaded, Server, MANIFEST, SITE_FILES};

/// `--manifest /abs/...` where the login folder is `/`: the same file as `abs/...` inside the
/// remote folder `abs`. It is still ftpsync's own: never deleted by `--delete`, never a change.
#[test]
fn an_absolute_manifest_path_inside_the_remote_folder_is_never_deleted() {
    let server = Server::in_process("abs");
    let source = site();
    let args = ["--delete", "--manifest", "/abs/deploy.json"];
    let first = ci_deploy(&source, &server, &args);
    assert_eq!(first.code, 0, "{first}");
    assert!(server.dir.join("deploy.json").is_file(), "{first}");
    let second = ci_deploy(&source, &server, &args);
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(second.summary["deleted"], 0, "{second}");
    assert_eq!(second.summary["files_uploaded"], 0, "{second}");
    assert!(server.dir.join("deploy.json").is_file(), "{second}");
    let third = ci_deploy(&source, &server, &args);
    assert_eq!(third.summary["files_uploaded"], 0, "{third}");
}

/// A local folder named like the manifest: nothing in it is uploaded (it would take the
/// manifest's place on the server and break every later deploy).
#[test]
fn a_local_folder_in_the_manifest_s_place_is_never_uploaded() {
    let server = Server::in_process("local_dir");
    let source = site();
    source.write(&format!("{MANIFEST}/inner.txt"), "not the manifest\n");
    for _ in 0..2 {
        let run = ci_deploy(&source, &server, &["--delete"]);
        assert_eq!(run.code, 0, "{run}");
        assert!(server.dir.join(MANIFEST).is_file(), "{run}");
        assert!(
            uploaded(&run).iter().all(|p| !p.starts_with(MANIFEST)),
            "{run}"
        );
    }
}

/// A folder on the server where the manifest should be: exit 2, nothing uploaded or deleted.
#[test]
fn a_folder_in_the_manifest_s_place_on_the_server_stops_the_deploy() {
    let server = Server::in_process("remote_dir");
    let source = site();
    std::fs::create_dir_all(server.dir.join(MANIFEST).join("sub")).unwrap();
    std::fs::write(server.dir.join(MANIFEST).join("sub/keep"), "keep\n").unwrap();
    let run = ci_deploy(&source, &server, &["--delete"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.summary["error"].as_str().unwrap().contains("manifest"),
        "{run}"
    );
    assert!(uploaded(&run).is_empty(), "{run}");
    assert!(server.dir.join(MANIFEST).join("sub/keep").is_file());
}

/// `--adopt` left in a CI job's options: once the server has a manifest, a file it does not
/// record (here: excluded for a while) is compared, not adopted: a same-size edit made
/// meanwhile goes up, and is not recorded as deployed when it was not.
#[test]
fn adopt_is_for_a_server_without_a_manifest_only() {
    let server = Server::in_process("adopt_once");
    let source = site();
    source.write("notes.txt", "version 1\n");
    let first = ci_deploy(&source, &server, &["--adopt"]);
    assert_eq!(first.code, 0, "{first}");
    let second = ci_deploy(&source, &server, &["--adopt", "-x", "notes.txt"]);
    assert_eq!(second.code, 0, "{second}");
    assert!(server.manifest()["files"].get("notes.txt").is_none());
    source.write("notes.txt", "version 2\n");
    let third = ci_deploy(&source, &server, &["--adopt"]);
    assert_eq!(third.code, 0, "{third}");
    assert_eq!(uploaded(&third), ["notes.txt"], "{third}");
    assert!(third.stderr.contains("--adopt"), "{third}");
    assert_eq!(
        std::fs::read_to_string(server.dir.join("notes.txt")).unwrap(),
        "version 2\n"
    );
}

/// A server that renames over no file: the manifest is deleted before its new copy is renamed
/// into place. When that rename fails too, the new copy stays, and the next deploy stops
/// (exit 2, naming it) rather than taking the missing manifest for a first deploy.
#[test]
fn a_manifest_lost_between_delete_and_rename_is_not_a_first_deploy() {
    use crate::support::faults::{Fault, FaultProxy};
    let server = Server::in_process("lost");
    let source = site();
    assert_eq!(ci_deploy(&source, &server, &[]).code, 0);
    source.write("page2.html", "<h1>page 02, longer</h1>\n");
    let refuse = Fault::Reply {
        command: "RNTO".into(),
        path: MANIFEST.into(),
        reply: "553 Rename refused".into(),
        times: 2,
    };
    let proxy = FaultProxy::start(&crate::support::host_port(&server.url), vec![refuse]);
    let through = Server {
        url: proxy.url(&server.url),
        dir: server.dir.clone(),
        extra: Vec::new(),
        name: "proxy",
        _server: None,
    };
    let refused = ci_deploy(&source, &through, &[]);
    assert_eq!(refused.code, 1, "{refused}");
    drop(proxy);
    let copies: Vec<String> = std::fs::read_dir(&server.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(&format!(".{MANIFEST}.")))
        .collect();
    if server.dir.join(MANIFEST).exists() {
        return; // Not deleted after all: nothing lost.
    }
    assert_eq!(copies.len(), 1, "the new copy is kept: {copies:?}");
    let next = ci_deploy(&source, &server, &[]);
    assert_eq!(next.code, 2, "{next}");
    assert!(uploaded(&next).is_empty(), "{next}");
    let error = next.summary["error"].as_str().unwrap();
    assert!(error.contains(&copies[0]), "{next}");

    // A copy cut short (a run stopped while storing it) is no manifest: a first deploy.
    let copy = server.dir.join(&copies[0]);
    let bytes = std::fs::read(&copy).unwrap();
    std::fs::write(&copy, &bytes[..bytes.len() / 2]).unwrap();
    let first = ci_deploy(&source, &server, &[]);
    assert_eq!(first.code, 0, "{first}");
    assert_eq!(first.summary["files_uploaded"], SITE_FILES - 1, "{first}");
}
