//! Pulls from the real servers (vsftpd: LIST only; pure-ftpd: MLSD; vsftpd over FTPS): the
//! tree a push put there comes back byte for byte (RETR pipelined with its PASV, folders listed
//! in batches), a rerun downloads nothing, and `-L` follows the links that stay inside.

use super::folder_times::folder_times;
use super::{pull, write_awkward_tree, writes_in};
use crate::support::faults::FaultProxy;
use crate::support::{self, assert_mirror, host_port, real_servers, snapshot, sync, Tree};

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_pull_back_what_was_pushed_then_a_rerun_downloads_nothing() {
    for server in real_servers() {
        let (url, dir) = server.scratch("pull_back");
        let source = Tree::new();
        let files = write_awkward_tree(source.path());
        assert_eq!(sync(source.path(), &url, &[]).code, 0, "{}", server.name);
        // Through the proxy, so that the command log shows what the pull sent.
        let proxy = FaultProxy::start(&host_port(&server.url), vec![]);
        let local = Tree::new();
        let run = pull(&proxy.url(&url), local.path(), &["-j", "4", "--delete"]);
        assert_eq!(run.code, 0, "{}: {run}", server.name);
        assert_eq!(
            run.summary["files_downloaded"], files,
            "{}: {run}",
            server.name
        );
        assert_mirror(local.path(), &dir);
        assert_eq!(
            writes_in(&proxy.commands()),
            Vec::<String>::new(),
            "{}",
            server.name
        );
        // Each RETR went in one write with its PASV.
        let followed = proxy.followed_commands();
        let retr = proxy
            .commands()
            .iter()
            .filter(|c| c.starts_with("RETR "))
            .count();
        let pasv_with_retr = followed.iter().filter(|c| *c == "PASV").count();
        assert!(pasv_with_retr >= retr, "{}: {followed:?}", server.name);

        // On one connection the folders the root names wait together: a LIST-only server
        // lists them in one batch of STATs (an MLSD server too, once its STAT listings
        // proved the same as MLSD).
        let before = snapshot(local.path());
        let rerun = pull(&proxy.url(&url), local.path(), &["-j", "1"]);
        assert_eq!(rerun.code, 0, "{}: {rerun}", server.name);
        assert_eq!(
            rerun.summary["files_downloaded"], 0,
            "{}: {rerun}",
            server.name
        );
        let followed = proxy.followed_commands();
        let stat_batches = followed.iter().filter(|c| c.starts_with("STAT ")).count();
        if server.name == "vsftpd" {
            assert!(stat_batches >= 1, "{}: {followed:?}", server.name);
        }
        let changed = support::changed_files(&before, &snapshot(local.path()));
        assert_eq!(changed, Vec::<String>::new(), "{}", server.name);
    }
}

/// Folder times: each pulled folder gets its remote folder's time, as precise as the listing
/// that named it: pure-ftpd's MLSD (the login folder's listing) to the second; LIST (vsftpd,
/// and the STAT listings pure-ftpd's deeper folders may come from) to the minute, or for a time
/// this old to the day. A rerun keeps them.
#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_pulled_folders_carry_the_remote_folders_times() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let now = now.unwrap().as_secs() as i64;
    // Ten days ago, 17 s past a minute: LIST shows it to the minute.
    let recent = (now - 10 * 86_400) / 60 * 60 + 17;
    let times = [
        ("old", 1_000_000_003),
        ("old/sub", 1_000_090_007),
        ("recent", recent),
        ("recent/sub", recent + 65),
        ("empty", recent + 130),
    ];
    for server in real_servers() {
        let name = server.name;
        let (url, dir) = server.scratch("pull_folder_times");
        for rel in ["old/sub/f.txt", "recent/sub/g.txt"] {
            std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
            std::fs::write(dir.join(rel), rel).unwrap();
        }
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        for (rel, t) in times {
            support::set_mtime(&dir.join(rel), t as u64);
        }
        let root_time = recent + 195;
        support::set_mtime(&dir, root_time as u64);
        let local = Tree::new();
        let run = pull(&url, local.path(), &["-j", "3"]);
        assert_eq!(run.code, 0, "{name}: {run}");
        // LOCAL_DIR too, from the listing's own line for its folder (MLSD `cdir`, LIST `.`).
        let root_listed = match name {
            "pure-ftpd" => root_time,
            _ => root_time - root_time.rem_euclid(60),
        };
        assert_eq!(support::mtime(local.path()), root_listed, "{name}: {run}");
        let got = folder_times(local.path());
        for (rel, t) in times {
            let shown = if t < now - 180 * 86_400 { 86_400 } else { 60 };
            let listed = t - t.rem_euclid(shown);
            match (name, rel.contains('/')) {
                ("pure-ftpd", false) => assert_eq!(got[rel], t, "{name}: {rel}"),
                ("pure-ftpd", true) => {
                    assert!(
                        got[rel] == t || got[rel] == listed,
                        "{name}: {rel}: {got:?}"
                    )
                }
                _ => assert_eq!(got[rel], listed, "{name}: {rel}"),
            }
        }
        let rerun = pull(&url, local.path(), &[]);
        assert_eq!(rerun.code, 0, "{name}: {rerun}");
        assert_eq!(folder_times(local.path()), got, "{name}: {rerun}");
    }
}

/// The URL, root folder and CA file of a real server with explicit TLS (`NAME`: VSFTPD or
/// PROFTPD), from `FTPSYNC_TEST_NAME_TLS_URL`, `_ROOT` and `FTPSYNC_TEST_TLS_CA`; None when they
/// are not set (a failure when the real servers are required).
fn tls_server(name: &str) -> Option<(String, String, String)> {
    let var = |k: String| std::env::var(k).ok();
    let found = (
        var(format!("FTPSYNC_TEST_{name}_TLS_URL")),
        var(format!("FTPSYNC_TEST_{name}_TLS_ROOT")),
        var("FTPSYNC_TEST_TLS_CA".to_string()),
    );
    let (Some(url), Some(root), Some(ca)) = found else {
        let required = std::env::var("FTPSYNC_REQUIRE_REAL_SERVERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FTPSYNC_TEST_{name}_TLS_URL, _ROOT and FTPSYNC_TEST_TLS_CA"
        );
        return None;
    };
    Some((url, root, ca))
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn a_pull_over_ftps_mirrors_the_folder() {
    let Some((url, root, ca)) = tls_server("VSFTPD") else {
        return;
    };
    let dir = std::path::Path::new(&root).join("pull_tls");
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("{}/pull_tls", url.trim_end_matches('/'));
    let source = Tree::new();
    write_awkward_tree(source.path());
    assert_eq!(sync(source.path(), &url, &["--ca-file", &ca]).code, 0);
    let local = Tree::new();
    let run = pull(&url, local.path(), &["--ca-file", &ca, "-j", "3"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(local.path(), &dir);
}

/// `-L`: the real servers show symbolic links (vsftpd in LIST, pure-ftpd in STAT; its MLSD
/// names no target): a link to a file or folder inside the remote folder comes down as a plain
/// file or folder with the target's bytes; one that points outside, to an absolute path or to a
/// folder holding it is reported and skipped. Without `-L` every link is skipped.
#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn with_follow_symlinks_links_inside_the_folder_come_down_as_their_targets() {
    use std::os::unix::fs::symlink;
    for server in real_servers() {
        let (url, dir) = server.scratch("pull_links");
        let files = [("d/f.txt", "file in d"), ("d/sub/g.txt", "deeper")];
        for (rel, text) in files {
            std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
            std::fs::write(dir.join(rel), text).unwrap();
        }
        let links = [
            ("ldir", "d"),
            ("lfile", "d/sub/../f.txt"),
            ("d/sub/back", "../f.txt"),
            ("up", ".."),
            ("d/sub/loop", ".."),
            ("abs", "/etc/hostname"),
            ("out", "../../../etc/hostname"),
        ];
        for (link, target) in links {
            symlink(target, dir.join(link)).unwrap();
        }
        let name = server.name;
        let plain = Tree::new();
        let run = pull(&url, plain.path(), &[]);
        assert_eq!(run.code, 0, "{name}: {run}");
        let local = plain.path();
        assert!(
            !local.join("ldir").exists() && !local.join("lfile").exists(),
            "{name}"
        );
        assert_eq!(run.summary["skipped_remote"], links.len(), "{name}: {run}");

        let followed = Tree::new();
        let run = pull(&url, followed.path(), &["-L", "-j", "3"]);
        assert_eq!(run.code, 0, "{name}: {run}");
        let local = followed.path();
        let read = |rel: &str| std::fs::read_to_string(local.join(rel)).unwrap();
        for (rel, text) in [
            ("lfile", "file in d"),
            ("ldir/f.txt", "file in d"),
            ("ldir/sub/g.txt", "deeper"),
            ("ldir/sub/back", "file in d"),
            ("d/sub/back", "file in d"),
        ] {
            assert_eq!(read(rel), text, "{name}: {rel}");
            let meta = std::fs::symlink_metadata(local.join(rel)).unwrap();
            assert!(meta.is_file(), "{name}: {rel} is a plain file");
        }
        assert!(std::fs::symlink_metadata(local.join("ldir"))
            .unwrap()
            .is_dir());
        for skipped in ["up", "d/sub/loop", "ldir/sub/loop", "abs", "out"] {
            assert!(!local.join(skipped).exists(), "{name}: {skipped}");
            assert!(
                run.stderr
                    .contains(&format!("{skipped}: remote symbolic link not followed")),
                "{name}: {skipped}: {run}"
            );
        }
        assert_eq!(run.summary["skipped_remote"], 5, "{name}: {run}");
    }
}

/// `--checksum`: proftpd (mod_digest) hashes files, so a local file of the remote size is
/// compared by content, whatever the times say: an older one with the same bytes stays, a newer
/// one with other bytes is downloaded. vsftpd hashes nothing: the pull is refused (exit 2)
/// before anything is written.
#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn checksum_compares_same_size_files_by_the_server_hash_or_is_refused() {
    let Some((url, root, ca)) = tls_server("PROFTPD") else {
        return;
    };
    let write_remote = |dir: &std::path::Path| {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in [("same.txt", "abc"), ("differs.txt", "xyz"), ("empty", "")] {
            std::fs::write(dir.join(name), text).unwrap();
            support::set_mtime(&dir.join(name), 1_600_000_000);
        }
    };
    let local = Tree::new();
    local.write("same.txt", "abc");
    local.set_mtime("same.txt", 1_500_000_000);
    local.write("differs.txt", "xy!");
    local.set_mtime("differs.txt", 1_700_000_000);
    // proftpd will not hash an empty file (501): two empty files are the same all the same.
    local.write("empty", "");

    let dir = std::path::Path::new(&root).join("pull_checksum");
    write_remote(&dir);
    let url = format!("{}/pull_checksum", url.trim_end_matches('/'));
    let run = pull(&url, local.path(), &["--checksum", "--ca-file", &ca]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.summary["files_downloaded"], 1, "{run}");
    assert_eq!(
        std::fs::read_to_string(local.join("differs.txt")).unwrap(),
        "xyz"
    );
    assert_eq!(
        support::mtime(&local.join("same.txt")),
        1_500_000_000,
        "kept"
    );

    let vsftpd = real_servers().into_iter().find(|s| s.name == "vsftpd");
    let (url, dir) = vsftpd.expect("vsftpd").scratch("pull_checksum");
    write_remote(&dir);
    let before = snapshot(local.path());
    let run = pull(&url, local.path(), &["--checksum"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("no hash command"), "{run}");
    assert_eq!(
        support::changed_files(&before, &snapshot(local.path())),
        Vec::<String>::new()
    );
}
