//! `--backup-dir`: what a run replaces or deletes is moved to `BACKUP/<UTC time of the run>/`
//! first, under its path in the remote folder; a run that changes nothing leaves no dated
//! folder; a backup folder inside the remote folder is never uploaded into or deleted; a file
//! that cannot be moved there is neither replaced nor deleted.

use std::path::{Path, PathBuf};

use crate::support::faults::{renamed_in_case_only, Fault, FaultProxy};
use crate::support::{self, assert_mirror, assert_mirror_except, sync, FtpServer, Tree};

/// A server to back up on: the remote folder's URL and local path, and the backup folder's
/// argument (relative to the login folder) and local path.
struct Place {
    name: &'static str,
    url: String,
    dir: PathBuf,
    backup_arg: String,
    backup: PathBuf,
    _server: Option<FtpServer>,
}

/// The in-process server, with the remote folder `www` and the backup folder `bak` beside it.
fn in_process() -> Place {
    let server = FtpServer::start();
    Place {
        name: "libunftp",
        url: server.url("www"),
        dir: server.remote_dir("www"),
        backup_arg: "bak".into(),
        backup: server.remote_dir("bak"),
        _server: Some(server),
    }
}

/// Every real server, each with a fresh folder for `test` holding the remote folder `www` and
/// the backup folder `bak` beside it.
fn real_places(test: &str) -> Vec<Place> {
    let real = support::real_servers().into_iter().map(|real| {
        let (url, dir) = real.scratch(test);
        Place {
            name: real.name,
            url: format!("{url}/www"),
            dir: dir.join("www"),
            backup_arg: format!("{test}/bak"),
            backup: dir.join("bak"),
            _server: None,
        }
    });
    real.collect()
}

fn site() -> Tree {
    let tree = Tree::new();
    tree.write("css/a.css", "a { old }");
    tree.write("js/b.js", "let b = 'old';");
    tree.write("index.html", "home");
    tree.write("old.html", "old page");
    tree.write("old/x.txt", "old x");
    tree.write("old/sub/y.txt", "old y");
    tree
}

/// Replaces two files and removes a file and a folder (with a file in a subfolder).
fn change(tree: &Tree) {
    tree.write("css/a.css", "a { new, longer }");
    tree.write("js/b.js", "let b = 'new and longer';");
    for rel in ["css/a.css", "js/b.js"] {
        tree.set_mtime(rel, 1_700_000_000);
    }
    tree.remove("old.html");
    tree.remove("old");
}

/// The dated folders in `backup`, checking that each is named by a UTC time (and a number
/// after it, from the second run of that second on).
fn dated_folders(backup: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(backup) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let (stamp, run) = name.split_at(name.len().min(18));
        let shape: String = stamp
            .chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect();
        assert_eq!(shape, "0000-00-00T000000Z", "{name}");
        let nth = run.strip_prefix('-').map(str::parse::<u32>);
        assert!(
            run.is_empty() || nth.is_some_and(|n| n.is_ok_and(|n| n >= 2)),
            "{name}"
        );
    }
    names
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn replaced_and_deleted_files_are_kept_under_one_dated_folder_per_run() {
    keeps_what_it_replaces_and_deletes(in_process());
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_keep_replaced_and_deleted_files_under_one_dated_folder_per_run() {
    for place in real_places("backup_dir_keeps") {
        keeps_what_it_replaces_and_deletes(place);
    }
}

// Uploads on a connection that knows how the server sets times go in a chain (their renames
// pipelined with the next upload): one that replaces a file must not.
#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_back_up_every_file_of_a_large_deploy() {
    for place in real_places("backup_dir_many") {
        let name = place.name;
        let tree = Tree::new();
        for i in 0..24 {
            tree.write(&format!("p/{i}.html"), format!("old {i}"));
        }
        let args = ["-j", "2", "--backup-dir", &place.backup_arg];
        assert_eq!(sync(tree.path(), &place.url, &args).code, 0, "{name}");
        let old = support::tree_digest(tree.path());
        for i in 0..24 {
            tree.write(&format!("p/{i}.html"), format!("new {i}, longer"));
        }
        let run = sync(tree.path(), &place.url, &args);
        assert_eq!(run.code, 0, "{name}: {run}");
        assert_eq!(run.summary["backed_up"], 24, "{name}: {run}");
        assert_mirror(tree.path(), &place.dir);
        let dated = dated_folders(&place.backup);
        let kept = support::tree_digest(&place.backup.join(&dated[0]));
        assert_eq!(kept, old, "{name}: the old files, at their paths");
    }
}

/// A sync that replaces 2 files and removes 1 file and 1 folder (holding 2 files) keeps their
/// old contents under `bak/<dated>/` with the same relative paths; a dry run and a run that
/// changes nothing make no dated folder.
fn keeps_what_it_replaces_and_deletes(place: Place) {
    let name = place.name;
    let tree = site();
    let args = ["--delete", "--backup-dir", &place.backup_arg];
    let first = sync(tree.path(), &place.url, &args);
    assert_eq!(first.code, 0, "{name}: {first}");
    assert_eq!(first.summary["backed_up"], 0, "{name}: {first}");
    assert!(
        !place.backup.exists(),
        "{name}: nothing replaced, no backup"
    );

    change(&tree);
    let before = support::tree_digest(&place.dir);
    let dry = sync(
        tree.path(),
        &place.url,
        &[&args[..], &["--dry-run"]].concat(),
    );
    assert_eq!(dry.code, 0, "{name}: {dry}");
    assert_eq!(dry.summary["backed_up"], 5, "{name}: {dry}");
    assert_eq!(support::tree_digest(&place.dir), before, "{name}: dry run");
    assert!(!place.backup.exists(), "{name}: a dry run made the backup");

    let run = sync(tree.path(), &place.url, &args);
    assert_eq!(run.code, 0, "{name}: {run}");
    assert_mirror(tree.path(), &place.dir);
    let dated = dated_folders(&place.backup);
    assert_eq!(dated.len(), 1, "{name}: {dated:?}");
    let kept = place.backup.join(&dated[0]);
    // What was replaced or deleted: the site as it was, but for the file left alone.
    let old = site();
    old.remove("index.html");
    assert_mirror(old.path(), &kept);
    assert_eq!(run.summary["backed_up"], 5, "{name}: {run}");
    let shown = run.summary["backup_dir"].as_str().unwrap_or_default();
    assert!(shown.ends_with(&dated[0]), "{name}: {run}");
    assert_eq!(
        run.summary["deleted"], 5,
        "{name}: 3 files, 2 folders: {run}"
    );

    let again = sync(tree.path(), &place.url, &args);
    assert_eq!(again.code, 0, "{name}: {again}");
    assert_eq!(again.summary["backed_up"], 0, "{name}: {again}");
    assert_eq!(dated_folders(&place.backup), dated, "{name}: no new folder");
}

#[test]
fn a_backup_dir_inside_the_remote_folder_is_neither_uploaded_into_nor_deleted() {
    let server = FtpServer::start();
    let tree = site();
    // A local folder of that name is not uploaded: the server's is ftpsync's.
    tree.write(".bak/local.txt", "not for the server");
    let url = server.url("www");
    let args = ["--delete", "--backup-dir", "www/.bak"];
    let first = sync(tree.path(), &url, &args);
    assert_eq!(first.code, 0, "{first}");
    assert!(first.stderr.contains("--backup-dir"), "a notice: {first}");
    assert!(!server.remote_dir("www/.bak").exists(), "{first}");

    change(&tree);
    let run = sync(tree.path(), &url, &args);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror_except(tree.path(), &server.remote_dir("www"), &[".bak/"]);
    let dated = dated_folders(&server.remote_dir("www/.bak"));
    assert_eq!(dated.len(), 1, "{dated:?}");
    let kept = server.remote_dir(&format!("www/.bak/{}", dated[0]));
    assert_eq!(read(&kept.join("css/a.css")), "a { old }");
    assert_eq!(read(&kept.join("old/sub/y.txt")), "old y");

    // Nothing local is left to replace; --delete must not take the backup for an extra.
    let again = sync(tree.path(), &url, &args);
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(again.summary["deleted"], 0, "{again}");
    assert_eq!(again.summary["unchanged"], 3, "{again}");
    assert_eq!(read(&kept.join("css/a.css")), "a { old }");
    assert!(!server.remote_dir("www/.bak/local.txt").exists());
}

#[test]
fn a_refused_move_into_the_backup_leaves_the_remote_file_in_place() {
    refused_moves_leave_the_files_in_place(|| vec![in_process()]);
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_leave_the_remote_file_in_place_when_the_move_is_refused() {
    refused_moves_leave_the_files_in_place(|| real_places("backup_dir_refused"));
}

/// Behind a proxy refusing the move's RNTO (or RNFR), nothing is replaced or deleted, the run
/// fails naming --backup-dir, and the new copies are not left behind.
fn refused_moves_leave_the_files_in_place(places: impl Fn() -> Vec<Place>) {
    // The refused command, --inplace, and whether files are replaced (when they are, a failed
    // upload also keeps --delete from running: then only deletions are tried).
    let cases = [
        ("RNTO", false, true),
        ("RNFR", false, true),
        ("RNTO", true, true),
        ("RNTO", false, false),
        ("RNFR", false, false),
    ];
    for (refused, inplace, replacing) in cases {
        for place in places() {
            let tree = site();
            assert_eq!(sync(tree.path(), &place.url, &[]).code, 0);
            if replacing {
                change(&tree);
            } else {
                tree.remove("old.html");
                tree.remove("old");
            }
            // RNFR .../www/... names the files to move; RNTO .../bak/... their new place.
            let path = if refused == "RNTO" { "bak/" } else { "www/" };
            let fault = Fault::Reply {
                command: refused.into(),
                path: path.into(),
                reply: "553 Permission denied".into(),
                times: usize::MAX,
            };
            let proxy = FaultProxy::start(&support::host_port(&place.url), vec![fault]);
            let backup = ["--delete", "--backup-dir", &place.backup_arg];
            let mut args = [&backup[..], &["--retries", "1"]].concat();
            args.extend(inplace.then_some("--inplace"));
            let run = sync(tree.path(), &proxy.url(&place.url), &args);
            let case = format!(
                "{}: {refused}, inplace {inplace}, replacing {replacing}",
                place.name
            );
            assert_eq!(run.code, 1, "{case}: {run}");
            assert!(proxy.fired(0) > 0, "{case}: {run}");
            let remote = |rel: &str| read(&place.dir.join(rel));
            assert_eq!(remote("css/a.css"), "a { old }", "{case}: not replaced");
            assert_eq!(remote("js/b.js"), "let b = 'old';", "{case}: not replaced");
            assert_eq!(remote("old.html"), "old page", "{case}: not deleted");
            assert_eq!(remote("old/sub/y.txt"), "old y", "{case}: not deleted");
            let failures = run.summary["failures"].to_string();
            assert!(failures.contains("--backup-dir"), "{case}: {failures}");
            assert!(failures.contains("553"), "{case}: {failures}");
            let temps = walkdir::WalkDir::new(&place.dir)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".ftpsync-tmp"))
                .count();
            assert_eq!(temps, 0, "{case}: the new copies are removed");
        }
    }
}

#[test]
fn a_refused_rename_into_place_puts_the_old_file_back() {
    let server = FtpServer::start();
    let tree = site();
    let url = server.url("www");
    assert_eq!(sync(tree.path(), &url, &[]).code, 0);
    change(&tree);
    // The backup's RNTO names bak/...: only the rename into place is refused, twice (ftpsync
    // tries again after a DELE, for servers that rename over no file).
    let fault = Fault::Reply {
        command: "RNTO".into(),
        path: "www/css/a.css".into(),
        reply: "553 Not allowed".into(),
        times: 2,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![fault]);
    let run = sync(tree.path(), &proxy.url(&url), &["--backup-dir", "bak"]);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(proxy.fired(0), 2, "{run}");
    let remote = |rel: &str| read(&server.remote_dir(&format!("www/{rel}")));
    assert_eq!(remote("css/a.css"), "a { old }", "put back: {run}");
    assert_eq!(remote("js/b.js"), "let b = 'new and longer';", "{run}");
    assert_eq!(run.summary["backed_up"], 1, "{run}");
}

#[test]
fn inplace_and_checksum_uploads_back_up_what_they_replace() {
    for mode in ["--inplace", "--checksum"] {
        let server = FtpServer::start();
        let tree = site();
        let url = server.url("www");
        assert_eq!(sync(tree.path(), &url, &[mode]).code, 0, "{mode}");
        change(&tree);
        let run = sync(tree.path(), &url, &[mode, "--backup-dir", "bak"]);
        assert_eq!(run.code, 0, "{mode}: {run}");
        assert_eq!(run.summary["backed_up"], 2, "{mode}: {run}");
        let dated = dated_folders(&server.remote_dir("bak"));
        assert_eq!(dated.len(), 1, "{mode}: {dated:?}");
        let kept = server.remote_dir(&format!("bak/{}", dated[0]));
        assert_eq!(read(&kept.join("css/a.css")), "a { old }", "{mode}");
        assert_eq!(read(&kept.join("js/b.js")), "let b = 'old';", "{mode}");
        assert_mirror_except(
            tree.path(),
            &server.remote_dir("www"),
            &["old", ".ftpsync-manifest.json"],
        );
    }
}

#[test]
fn a_backup_dir_holding_the_remote_folder_is_refused_before_connecting() {
    let tree = site();
    let refused = [
        ("ftp://u:p@127.0.0.1:9/www", "www"),
        ("ftp://u:p@127.0.0.1:9/www", "www/"),
        ("ftp://u:p@127.0.0.1:9//srv/www", "/srv"),
    ];
    for (url, given) in refused {
        let run = sync(tree.path(), url, &["--backup-dir", given]);
        assert_eq!(run.code, 2, "{given}: {run}");
        let why = "is the remote folder or a folder above it";
        assert!(run.stderr.contains(why), "{given}: {run}");
    }
}

#[test]
fn type_changes_back_up_the_entry_they_replace() {
    let server = FtpServer::start();
    let tree = Tree::new();
    tree.write("was-file", "a file");
    tree.write("was-dir/inner.txt", "inside");
    let url = server.url("www");
    assert_eq!(sync(tree.path(), &url, &[]).code, 0);
    tree.remove("was-file");
    tree.write("was-file/now.txt", "now a folder");
    tree.remove("was-dir");
    tree.write("was-dir", "now a file");
    let run = sync(tree.path(), &url, &["--delete", "--backup-dir", "bak"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir("www"));
    let dated = dated_folders(&server.remote_dir("bak"));
    assert_eq!(dated.len(), 1, "{dated:?}");
    let kept = server.remote_dir(&format!("bak/{}", dated[0]));
    assert_eq!(read(&kept.join("was-file")), "a file");
    assert_eq!(read(&kept.join("was-dir/inner.txt")), "inside");
}

/// The in-process server with the site synced (with `args`) to its remote folder `www`, and that
/// folder's URL.
fn synced(args: &[&str]) -> (FtpServer, Tree, String) {
    let server = FtpServer::start();
    let tree = site();
    let url = server.url("www");
    assert_eq!(sync(tree.path(), &url, args).code, 0);
    (server, tree, url)
}

/// The file `rel` in `backup`'s only dated folder.
fn kept_file(backup: &Path, rel: &str) -> String {
    let dated = dated_folders(backup);
    assert_eq!(dated.len(), 1, "{dated:?}");
    read(&backup.join(&dated[0]).join(rel))
}

/// The dated folder's name for the UTC second `unix`.
fn stamp(unix: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    let shape = time::macros::format_description!("[year]-[month]-[day]T[hour][minute][second]Z");
    at.format(&shape).unwrap()
}

// Two runs in the same second (two sites sharing a --backup-dir from cron, or one site deployed
// twice): the second must not move its files onto the first one's backup.
#[test]
fn a_run_never_moves_a_file_onto_an_earlier_runs_backup() {
    let (server, tree, url) = synced(&[]);
    change(&tree);
    // Earlier runs' backups, in the folders of this second and the next ones.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let earlier: Vec<String> = (now - 1..now + 30).map(stamp).collect();
    for folder in &earlier {
        let kept = server.remote_dir(&format!("bak/{folder}/css"));
        std::fs::create_dir_all(&kept).unwrap();
        std::fs::write(kept.join("a.css"), "an earlier run's").unwrap();
    }
    let run = sync(tree.path(), &url, &["--backup-dir", "bak"]);
    assert_eq!(run.code, 0, "{run}");
    for folder in &earlier {
        let kept = server.remote_dir(&format!("bak/{folder}/css/a.css"));
        assert_eq!(read(&kept), "an earlier run's", "{folder}: {run}");
    }
    let dated = dated_folders(&server.remote_dir("bak"));
    let ours: Vec<&String> = dated.iter().filter(|d| !earlier.contains(d)).collect();
    assert_eq!(ours.len(), 1, "{dated:?}");
    assert!(
        ours[0].ends_with("-2"),
        "the second of its second: {ours:?}"
    );
    let kept = server.remote_dir(&format!("bak/{}", ours[0]));
    assert_eq!(read(&kept.join("css/a.css")), "a { old }");
    let shown = run.summary["backup_dir"].as_str().unwrap_or_default();
    assert!(shown.ends_with(ours[0].as_str()), "{run}");
}

// A server that ignores case (IIS, FileZilla Server), emulated for one name by a proxy: the
// local file's name changed case. The upload replaces the old file (backed up first), and
// --delete must not then take the new file for the old name's.
#[test]
fn a_name_in_another_case_on_a_server_that_ignores_case_is_backed_up_not_lost() {
    let (server, tree, url) = synced(&[]);
    let proxy = renamed_in_case_only(&server.addr(), &tree);
    let args = ["--delete", "--backup-dir", "bak"];
    let run = sync(tree.path(), &proxy.url(&url), &args);
    assert_eq!(run.code, 0, "{run}");
    assert!(proxy.fired(0) > 0, "{run}");
    let live = server.remote_dir("www/index.html");
    assert_eq!(read(&live), "new home, longer", "{run}");
    let kept = kept_file(&server.remote_dir("bak"), "index.html");
    assert_eq!(kept, "home", "the old page is kept: {run}");
    assert_eq!(run.summary["backed_up"], 1, "{run}");
}

// A file that appears on the server between the listing and the upload's rename into place.
#[test]
fn a_file_that_came_after_the_listing_is_backed_up_before_it_is_replaced() {
    let (server, tree, url) = synced(&[]);
    tree.write("new.html", "the new page");
    let hold = Fault::HoldTransferEnd {
        path: "new.html".into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![hold]);
    let proxied = proxy.url(&url);
    let run = std::thread::scope(|s| {
        let running = s.spawn(|| sync(tree.path(), &proxied, &["--backup-dir", "bak"]));
        assert!(proxy.wait_held(std::time::Duration::from_secs(60)));
        std::fs::write(server.remote_dir("www/new.html"), "put there meanwhile").unwrap();
        proxy.release();
        running.join().unwrap()
    });
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(read(&server.remote_dir("www/new.html")), "the new page");
    let kept = kept_file(&server.remote_dir("bak"), "new.html");
    assert_eq!(kept, "put there meanwhile", "{run}");
    assert_eq!(run.summary["backed_up"], 1, "{run}");
}

// The connection breaks at the rename into place: the old file, already in the backup, goes back
// to its place (on a fresh connection); the next try moves it again.
#[test]
fn a_rename_into_place_cut_off_puts_the_old_file_back() {
    for cuts in [usize::MAX, 1] {
        let (server, tree, url) = synced(&[]);
        change(&tree);
        // Only the new copy's RNFR: the moves name the file itself.
        let cut = Fault::ResetOn {
            command: "RNFR".into(),
            path: ".a.css.".into(),
            times: cuts,
        };
        let proxy = FaultProxy::start(&server.addr(), vec![cut]);
        let args = ["--backup-dir", "bak", "--retries", "2"];
        let run = sync(tree.path(), &proxy.url(&url), &args);
        let live = read(&server.remote_dir("www/css/a.css"));
        if cuts == 1 {
            assert_eq!(run.code, 0, "{run}");
            assert_eq!(live, "a { new, longer }", "{run}");
            let kept = kept_file(&server.remote_dir("bak"), "css/a.css");
            assert_eq!(kept, "a { old }", "{run}");
            continue;
        }
        assert_eq!(run.code, 1, "{run}");
        assert_eq!(proxy.fired(0), 2, "a cut on each try: {run}");
        assert_eq!(live, "a { old }", "put back: {run}");
        assert_eq!(run.summary["backed_up"], 1, "only b.js: {run}");
    }
}

// The connection breaks right after the server moved a file to the backup, before its reply: the
// next try finds the file in this run's backup (the folder is the run's alone) and goes on.
#[test]
fn a_move_whose_reply_was_lost_is_found_in_the_backup_on_the_next_try() {
    for (op, what) in [("replace", "css/a.css"), ("delete", "old.html")] {
        let (server, tree, url) = synced(&[]);
        change(&tree);
        // The move's RNTO: bak/<dated>Z/...; the rename into place names www/...
        let lost = Fault::ResetAfter {
            command: "RNTO".into(),
            path: format!("Z/{what}"),
            times: 1,
        };
        let proxy = FaultProxy::start(&server.addr(), vec![lost]);
        let args = ["--delete", "--backup-dir", "bak", "--retries", "3"];
        let run = sync(tree.path(), &proxy.url(&url), &args);
        assert_eq!(proxy.fired(0), 1, "{op}: {run}");
        assert_eq!(run.code, 0, "{op}: {run}");
        assert_mirror_except(tree.path(), &server.remote_dir("www"), &[]);
        let kept = kept_file(&server.remote_dir("bak"), what);
        assert_eq!(kept, read(&site().path().join(what)), "{op}: {run}");
    }
}

// With --backup-dir, --inplace uploads go under a temporary name too: a STOR the server refuses
// must not leave the site without the file it was to replace.
#[test]
fn an_inplace_upload_refused_leaves_the_file_it_was_to_replace() {
    let (server, tree, url) = synced(&["--inplace"]);
    change(&tree);
    let full = Fault::Reply {
        command: "STOR".into(),
        path: "a.css".into(),
        reply: "552 Quota exceeded".into(),
        times: usize::MAX,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![full]);
    let args = ["--inplace", "--backup-dir", "bak", "-j", "1"];
    let run = sync(tree.path(), &proxy.url(&url), &args);
    assert_eq!(run.code, 1, "{run}");
    assert!(proxy.fired(0) > 0, "{run}");
    assert!(run.stderr.contains("--inplace is ignored"), "{run}");
    assert_eq!(
        read(&server.remote_dir("www/css/a.css")),
        "a { old }",
        "{run}"
    );
}
