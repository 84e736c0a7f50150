//! `--checksum` against the in-process server (which has no hash command and cannot set
//! times): the CI loop, a manifest that cannot be used, `--manifest` outside the folder, a
//! first deploy with and without `--adopt`, a deploy killed half way, `--dry-run`.

use super::{
    ci_deploy, ci_loop, corrupt_manifest_stops_the_deploy, killed_half_way,
    manifest_outside_the_folder, site, uploaded, Server, MANIFEST, SITE_FILES,
};
use crate::support::sync;

#[test]
fn ci_loop_on_the_in_process_server() {
    ci_loop(&Server::in_process("ci"));
}

#[test]
fn a_corrupt_manifest_exits_2_without_uploading() {
    corrupt_manifest_stops_the_deploy(&Server::in_process("corrupt"));
}

// A hostile server must not make ftpsync hold an endless "manifest" in memory.
#[test]
fn a_manifest_over_64_mib_is_refused_not_read_whole() {
    let server = Server::in_process("huge");
    let source = site();
    assert_eq!(ci_deploy(&source, &server, &[]).code, 0);
    let manifest = std::fs::File::create(server.dir.join(MANIFEST)).unwrap();
    manifest.set_len(64 * 1024 * 1024 + 1).unwrap();
    let run = ci_deploy(&source, &server, &[]);
    assert_eq!(run.code, 2, "{run}");
    let error = run.summary["error"].as_str().unwrap();
    assert!(error.contains("larger than 67108864 bytes"), "{run}");
}

#[test]
fn the_manifest_can_live_outside_the_remote_folder() {
    let server = Server::in_process("outside");
    manifest_outside_the_folder(&server, "outside");
}

#[test]
fn a_server_that_holds_the_site_without_a_manifest_gets_same_size_files_again_unless_adopted() {
    let server = Server::in_process("adopt");
    let source = site();
    // Put there by something else: no manifest.
    let plain = sync(source.path(), &server.url, &[]);
    assert_eq!(plain.code, 0, "{plain}");
    assert!(!server.dir.join(MANIFEST).exists());
    source.write("page0.html", "<h1>page 00 but longer</h1>\n");

    // No hash command here: same-size files cannot be compared, so they go again (but for
    // the empty file: two empty files are the same).
    let run = ci_deploy(&source, &server, &["--dry-run"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_uploaded"], SITE_FILES - 1, "{run}");
    assert!(!uploaded(&run).contains(&"empty.txt".to_string()), "{run}");
    assert!(
        !server.dir.join(MANIFEST).exists(),
        "a dry run writes nothing"
    );

    let adopted = ci_deploy(&source, &server, &["--adopt"]);
    assert_eq!(adopted.code, 0, "{adopted}");
    assert_eq!(uploaded(&adopted), ["page0.html"], "{adopted}");
    let files = server.manifest()["files"].clone();
    assert_eq!(files["page1.html"]["adopted"], true, "{files}");
    assert!(files["page0.html"].get("adopted").is_none(), "{files}");

    let next = ci_deploy(&source, &server, &[]);
    assert_eq!(next.summary["files_uploaded"], 0, "{next}");
}

#[test]
fn a_dry_run_reads_the_manifest_and_writes_nothing() {
    let server = Server::in_process("dry");
    let source = site();
    assert_eq!(ci_deploy(&source, &server, &[]).code, 0);
    let before = std::fs::read(server.dir.join(MANIFEST)).unwrap();
    source.write("page5.html", "<h1>PAGE 05</h1>\n");
    let run = ci_deploy(&source, &server, &["--dry-run", "--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(uploaded(&run), ["page5.html"], "{run}");
    assert_eq!(run.summary["manifest_written"], false, "{run}");
    assert_eq!(std::fs::read(server.dir.join(MANIFEST)).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(server.dir.join("page5.html")).unwrap(),
        "<h1>page 05</h1>\n"
    );
}

#[test]
fn a_local_file_in_the_manifest_s_place_is_never_uploaded() {
    let server = Server::in_process("local_copy");
    let source = site();
    source.write(MANIFEST, "{\"not\": \"the server's\"}");
    let run = ci_deploy(&source, &server, &["--delete"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_uploaded"], SITE_FILES, "{run}");
    assert!(
        run.stderr
            .contains("the server's copy is the --checksum manifest"),
        "{run}"
    );
    assert_eq!(server.manifest()["version"], 1);
}

#[test]
fn without_checksum_the_comparison_is_by_time_and_no_manifest_is_kept() {
    let server = Server::in_process("by_time");
    let source = site();
    let run = sync(source.path(), &server.url, &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["compare"], "time", "{run}");
    assert_eq!(run.summary["compared_by_hash"], 0, "{run}");
    assert!(!server.dir.join(MANIFEST).exists());
}

#[test]
fn a_deploy_killed_half_way_is_resumed_from_its_last_checkpoint() {
    killed_half_way(&Server::in_process("killed"));
}
