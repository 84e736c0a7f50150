//! `--checksum` deploys as a CI job runs them: each deploy from a fresh copy of the site (every
//! modification time new) with an empty state folder, against the in-process server here and
//! the real ones in `real.rs` (proftpd with mod_digest for the server's hashes).
//!
//! The parts: [`Server`] and [`ci_deploy`] (a deploy as CI makes it), [`ci_loop`] (the loop
//! every server goes through), then the cases that need the in-process server.

mod attacks;
mod hostile;
mod in_process;
mod real;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::support::faults::{Fault, FaultProxy};
use crate::support::{
    assert_mirror, assert_mirror_except, ftpsync, host_port, isolate_env, run, FtpServer, Run, Tree,
};

/// The manifest's default name.
const MANIFEST: &str = ".ftpsync-manifest.json";

/// A server to deploy to: the URL of a fresh folder, that folder on this machine, and the
/// options its connection needs (`--ca-file` for TLS).
struct Server {
    name: &'static str,
    url: String,
    dir: PathBuf,
    extra: Vec<String>,
    _server: Option<FtpServer>,
}

impl Server {
    fn in_process(test: &str) -> Server {
        let server = FtpServer::start();
        Server {
            name: "libunftp",
            url: server.url(test),
            dir: server.remote_dir(test),
            extra: Vec::new(),
            _server: Some(server),
        }
    }

    fn manifest(&self) -> serde_json::Value {
        let bytes = std::fs::read(self.dir.join(MANIFEST))
            .unwrap_or_else(|e| panic!("{}: read the manifest: {e}", self.name));
        serde_json::from_slice(&bytes).expect("the manifest is JSON")
    }
}

/// The site a CI job deploys: pages, assets in folders, an empty file.
fn site() -> Tree {
    let tree = Tree::new();
    for i in 0..12 {
        tree.write(&format!("page{i}.html"), format!("<h1>page {i:02}</h1>\n"));
    }
    tree.write("css/site.css", "body { color: black; }\n");
    tree.write("js/app.js", "console.log('v1');\n");
    tree.write("img/logo.bin", vec![7u8; 200_000]);
    tree.write("empty.txt", "");
    tree
}

const SITE_FILES: u64 = 16;

/// A fresh checkout of `source`: the same files, each with a new modification time.
fn checkout(source: &Tree) -> Tree {
    let copy = Tree::new();
    for entry in walkdir::WalkDir::new(source.path()).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(source.path()).unwrap();
        if entry.file_type().is_file() {
            copy.write(rel.to_str().unwrap(), std::fs::read(entry.path()).unwrap());
        }
    }
    copy
}

/// One CI deploy: `ftpsync --json --checksum EXTRA...` from a fresh checkout of `source`, with
/// an empty state folder. `prepare` may touch the checkout first.
fn ci_deploy_with(
    source: &Tree,
    server: &Server,
    extra: &[&str],
    prepare: impl FnOnce(&Tree),
) -> Run {
    let work = checkout(source);
    prepare(&work);
    let state = tempfile::tempdir().unwrap();
    let mut cmd = ftpsync();
    cmd.env("XDG_STATE_HOME", state.path())
        .args(["--json", "--checksum"])
        .args(&server.extra)
        .args(extra)
        .arg(work.path())
        .arg(&server.url);
    run(&mut cmd)
}

fn ci_deploy(source: &Tree, server: &Server, extra: &[&str]) -> Run {
    ci_deploy_with(source, server, extra, |_| {})
}

/// The paths a run uploaded, from its change lines (on stderr with `--json`).
fn uploaded(run: &Run) -> Vec<String> {
    let mut paths: Vec<String> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(|l| l.rsplit_once(" (").map_or(l, |(p, _)| p).to_string())
        .collect();
    paths.sort();
    paths
}

fn set_mtime(path: &Path, when: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .unwrap_or_else(|e| panic!("set the time of {}: {e}", path.display()));
}

/// The CI loop every server goes through: a first deploy uploads everything, the next nothing;
/// a same-size edit with an old time uploads exactly that file; a file edited on the server is
/// put back; a file removed locally goes with `--delete`, and the manifest never does.
fn ci_loop(server: &Server) {
    let name = server.name;
    let source = site();
    // Excluded: never uploaded.
    source.write("debug.log", "local only\n");
    let args = ["-j", "8", "--delete", "-x", "*.log"];

    let first = ci_deploy(&source, server, &args);
    assert_eq!(first.code, 0, "{name}: {first}");
    assert_eq!(
        first.summary["files_uploaded"], SITE_FILES,
        "{name}: {first}"
    );
    assert_eq!(first.summary["compare"], "checksum", "{name}");
    assert_eq!(first.summary["manifest_written"], true, "{name}: {first}");
    let ignore = [MANIFEST, "debug.log", "server.log"];
    assert_mirror_except(source.path(), &server.dir, &ignore);
    // Excluded on the server too: --delete leaves it.
    std::fs::write(server.dir.join("server.log"), "server only\n").unwrap();
    let manifest = server.manifest();
    assert_eq!(manifest["version"], 1, "{name}");
    assert_eq!(manifest["excludes"], serde_json::json!(["*.log"]), "{name}");
    let files = manifest["files"].as_object().unwrap();
    assert_eq!(files.len() as u64, SITE_FILES, "{name}");
    // The time each file has on the server: set by ftpsync, or (libunftp) as listed after.
    for (rel, entry) in files {
        assert!(entry["remote_mtime"].is_i64(), "{name}: {rel}: {entry}");
    }

    let second = ci_deploy(&source, server, &args);
    assert_eq!(second.code, 0, "{name}: {second}");
    assert_eq!(second.summary["files_uploaded"], 0, "{name}: {second}");
    assert_eq!(second.summary["deleted"], 0, "{name}: {second}");
    assert_eq!(
        second.summary["compared_by_hash"], SITE_FILES,
        "{name}: {second}"
    );
    assert!(!second.stderr.contains(MANIFEST), "{name}: {second}");

    // Same size, older time: a comparison by time would skip it.
    source.write("js/app.js", "console.log('v2');\n");
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let third = ci_deploy_with(&source, server, &args, |work| {
        set_mtime(&work.join("js/app.js"), old)
    });
    assert_eq!(third.code, 0, "{name}: {third}");
    assert_eq!(uploaded(&third), ["js/app.js"], "{name}: {third}");
    assert_mirror_except(source.path(), &server.dir, &ignore);

    // Edited by hand on the server: same size, another time.
    let on_server = server.dir.join("css/site.css");
    std::fs::write(&on_server, "body { color: purple }\n").unwrap();
    set_mtime(&on_server, SystemTime::now() - Duration::from_secs(7200));
    let fourth = ci_deploy(&source, server, &args);
    assert_eq!(fourth.code, 0, "{name}: {fourth}");
    assert_eq!(uploaded(&fourth), ["css/site.css"], "{name}: {fourth}");
    assert_eq!(fourth.summary["drift_repaired"], 1, "{name}: {fourth}");
    assert!(
        fourth
            .stderr
            .contains("css/site.css: changed on the server"),
        "{name}: {fourth}"
    );
    assert_mirror_except(source.path(), &server.dir, &ignore);

    // Removed locally: deleted with --delete; the manifest stays, without it.
    source.remove("page3.html");
    let fifth = ci_deploy(&source, server, &args);
    assert_eq!(fifth.code, 0, "{name}: {fifth}");
    assert_eq!(fifth.summary["deleted"], 1, "{name}: {fifth}");
    assert_eq!(fifth.summary["files_uploaded"], 0, "{name}: {fifth}");
    assert_mirror_except(source.path(), &server.dir, &ignore);
    assert!(
        server.dir.join("server.log").is_file(),
        "{name}: excluded, never deleted"
    );
    assert!(
        server.manifest()["files"].get("page3.html").is_none(),
        "{name}"
    );

    let last = ci_deploy(&source, server, &args);
    assert_eq!(last.summary["files_uploaded"], 0, "{name}: {last}");
    assert_eq!(last.summary["manifest_written"], false, "{name}: {last}");
}

/// A manifest that is not one (garbage, a newer version) stops the deploy with exit 2 before
/// anything is uploaded.
fn corrupt_manifest_stops_the_deploy(server: &Server) {
    let name = server.name;
    let source = site();
    let first = ci_deploy(&source, server, &[]);
    assert_eq!(first.code, 0, "{name}: {first}");
    source.write("page1.html", "<h1>changed!!</h1>\n");
    let manifest = server.dir.join(MANIFEST);
    let good = std::fs::read_to_string(&manifest).unwrap();
    for bad in [
        "garbage".to_string(),
        good.replace("\"version\": 1", "\"version\": 9"),
        good[..good.len() / 2].to_string(),
    ] {
        std::fs::write(&manifest, &bad).unwrap();
        for dry in [&[][..], &["--dry-run"]] {
            let run = ci_deploy(&source, server, dry);
            assert_eq!(run.code, 2, "{name}: {run}");
            assert!(
                run.summary["error"].as_str().unwrap().contains("manifest"),
                "{name}: {run}"
            );
            assert!(uploaded(&run).is_empty(), "{name}: {run}");
            assert_eq!(std::fs::read_to_string(&manifest).unwrap(), bad, "{name}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(server.dir.join("page1.html")).unwrap(),
        "<h1>page 01</h1>\n",
        "{name}: nothing was uploaded"
    );
}

/// `--manifest` beside the web root (`NAME/private/deploy.json` next to `NAME/www`, relative to
/// the login folder), `base` being the folder `NAME`: nothing of ftpsync's in the web root, and
/// the manifest works as in it.
fn manifest_outside_the_folder(base: &Server, name: &str) {
    let mut extra = base.extra.clone();
    extra.extend(["--manifest".into(), format!("{name}/private/deploy.json")]);
    let web = Server {
        name: base.name,
        url: format!("{}/www", base.url.trim_end_matches('/')),
        dir: base.dir.join("www"),
        extra,
        _server: None,
    };
    let source = site();
    let first = ci_deploy(&source, &web, &["--delete"]);
    assert_eq!(first.code, 0, "{}: {first}", base.name);
    assert_eq!(first.summary["files_uploaded"], SITE_FILES, "{first}");
    let outside = base.dir.join("private/deploy.json");
    assert!(outside.is_file(), "{}: {first}", base.name);
    assert_mirror(source.path(), &web.dir);
    let second = ci_deploy(&source, &web, &["--delete"]);
    assert_eq!(second.code, 0, "{}: {second}", base.name);
    assert_eq!(second.summary["files_uploaded"], 0, "{second}");
    assert_eq!(second.summary["deleted"], 0, "{second}");
    assert!(outside.is_file());
}

/// A deploy that is SIGKILLed after the manifest's first checkpoint, while one upload's end is
/// held back by a proxy: the manifest never claims that file, every claim is true, and the
/// rerun uploads only what the checkpoint lacks. Plain FTP only (the proxy).
fn killed_half_way(server: &Server) {
    let name = server.name;
    let source = Tree::new();
    // Largest first: the held file is the first upload, the others go on another worker.
    source.write("held.bin", vec![1u8; 100_000]);
    for i in 0..40 {
        source.write(&format!("f{i:02}.txt"), format!("file {i}\n"));
    }
    let hold = Fault::HoldTransferEnd {
        path: "held.bin".into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&host_port(&server.url), vec![hold]);
    let work = checkout(&source);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    isolate_env(&mut cmd);
    let mut child = cmd
        .args(["--checksum", "-j", "2"])
        .arg(work.path())
        .arg(proxy.url(&server.url))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        proxy.wait_held(Duration::from_secs(60)),
        "{name}: held.bin never ended"
    );
    // Wait for a checkpoint that has the 40 small files, then kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    let claimed = loop {
        let files = std::fs::read(server.dir.join(MANIFEST))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|m| m["files"].as_object().unwrap().clone());
        if let Some(files) = files.filter(|f| f.len() == 40) {
            break files;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: no checkpoint with the 40 small files"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!claimed.contains_key("held.bin"), "{name}: {claimed:?}");
    for (rel, entry) in &claimed {
        let bytes = std::fs::read(server.dir.join(rel)).unwrap();
        let hash = blake3::hash(&bytes);
        assert_eq!(entry["blake3"], hash.to_hex().as_str(), "{name}: {rel}");
    }
    proxy.release();
    drop(proxy);

    let rerun = ci_deploy(&source, server, &[]);
    assert_eq!(rerun.code, 0, "{name}: {rerun}");
    assert_eq!(uploaded(&rerun), ["held.bin"], "{name}: {rerun}");
    assert_mirror_except(source.path(), &server.dir, &[MANIFEST, ".held.bin."]);
}
