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
    // Written before the upload of page2.html (its entry goes first): refused, nothing sent.
    let refused = ci_deploy(&source, &through, &[]);
    assert_eq!(refused.code, 2, "{refused}");
    assert!(uploaded(&refused).is_empty(), "{refused}");
    let error = refused.summary["error"].as_str().unwrap();
    assert!(
        error.contains("cannot write the --checksum manifest"),
        "{refused}"
    );
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

/// Deploys SIGKILLed at moments spread over their run, each after an edit of the site (same
/// sizes too): after every kill, each file the manifest claims holds on the server what the
/// manifest says, or is listed otherwise than recorded (so that the next deploy sends it).
#[test]
fn deploys_killed_at_any_moment_leave_only_true_claims() {
    use std::time::{Duration, Instant};
    let server = Server::in_process("kills");
    let source = crate::support::Tree::new();
    let write_all = |round: usize| {
        for i in 0..60 {
            // Same size every round for most files, another content.
            source.write(
                &format!("d{}/f{i:02}.txt", i % 4),
                format!("r{round:03} {i:04}\n"),
            );
        }
        source.write("big.bin", vec![round as u8; 3_000_000]);
    };
    for round in 0..8 {
        write_all(round);
        let work = super::checkout(&source);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
        crate::support::isolate_env(&mut cmd);
        let mut child = cmd
            .args(["--checksum", "-j", "3", "--delete"])
            .arg(work.path())
            .arg(&server.url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let nanos = Instant::now().elapsed().subsec_nanos() as u64 ^ (round as u64 * 7919);
        std::thread::sleep(Duration::from_millis(100 + (nanos % 9) * 150));
        let _ = child.kill();
        child.wait().unwrap();
        let Ok(bytes) = std::fs::read(server.dir.join(MANIFEST)) else {
            continue;
        };
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        for (rel, entry) in manifest["files"].as_object().unwrap() {
            let Ok(content) = std::fs::read(server.dir.join(rel)) else {
                continue; // Gone: the next deploy uploads it.
            };
            let true_claim = blake3::hash(&content).to_hex().as_str() == entry["blake3"];
            let listed_otherwise = entry["remote_size"] != content.len() as u64;
            assert!(
                true_claim || listed_otherwise,
                "round {round}: {rel}: the manifest claims what the server does not hold: {entry}"
            );
        }
    }
    let last = ci_deploy(&source, &server, &["--delete"]);
    assert_eq!(last.code, 0, "{last}");
    // Temporary files of the killed runs stay (another machine's, for all ftpsync knows).
    for entry in walkdir::WalkDir::new(&server.dir) {
        let entry = entry.unwrap();
        let name = entry.file_name().to_str().unwrap();
        if name.ends_with(".ftpsync-tmp") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    crate::support::assert_mirror_except(source.path(), &server.dir, &[MANIFEST]);
    let again = ci_deploy(&source, &server, &[]);
    assert_eq!(again.summary["files_uploaded"], 0, "{again}");
}

/// A deploy killed after an upload was renamed into place, before the next checkpoint: the
/// manifest must not still claim the file's old content (same size: a listing of minute
/// precision, or a server without times, would not tell), or a revert would be skipped.
#[test]
fn a_kill_right_after_an_upload_leaves_no_claim_of_the_old_content() {
    use crate::support::faults::{Fault, FaultProxy};
    use std::time::{Duration, Instant};
    let server = Server::in_process("stale");
    let source = crate::support::Tree::new();
    source.write("held.bin", vec![1u8; 100_000]);
    source.write("a.txt", "version 1\n");
    assert_eq!(ci_deploy(&source, &server, &[]).code, 0);
    let v1 = blake3::hash(b"version 1\n").to_hex().to_string();
    assert_eq!(server.manifest()["files"]["a.txt"]["blake3"], v1.as_str());

    source.write("held.bin", vec![2u8; 100_000]);
    source.write("a.txt", "version 2\n");
    let hold = Fault::HoldTransferEnd {
        path: "held.bin".into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&crate::support::host_port(&server.url), vec![hold]);
    let work = super::checkout(&source);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    crate::support::isolate_env(&mut cmd);
    let mut child = cmd
        .args(["--checksum", "-j", "2"])
        .arg(work.path())
        .arg(proxy.url(&server.url))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read(server.dir.join("a.txt")).unwrap() != b"version 2\n" {
        assert!(Instant::now() < deadline, "a.txt never uploaded");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    proxy.release();
    drop(proxy);
    let claimed = server.manifest()["files"]["a.txt"]["blake3"].clone();
    assert_ne!(claimed, v1.as_str(), "the server holds version 2");
}
