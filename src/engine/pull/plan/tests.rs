use super::*;
use crate::ftp::listing::{RemoteTime, TimePrecision};

fn file(size: u64, unix: i64) -> RemoteEntry {
    RemoteEntry {
        name: String::new(),
        kind: EntryKind::File,
        link: None,
        size,
        mtime: Some(RemoteTime {
            unix,
            precision: TimePrecision::Minute,
        }),
    }
}

fn dir() -> RemoteEntry {
    RemoteEntry {
        kind: EntryKind::Dir,
        link: None,
        size: 0,
        ..file(0, 0)
    }
}

fn local(entries: &[(&str, LocalKind, u64, i64)]) -> LocalTree {
    let mut tree = LocalTree::default();
    for &(rel, kind, size, mtime) in entries {
        let entry = LocalEntry {
            kind,
            size,
            mtime,
            mtime_ns: mtime * 1_000_000_000,
        };
        tree.entries.insert(rel.into(), entry);
    }
    tree
}

fn remote(entries: &[(&str, RemoteEntry)]) -> RemoteTree {
    entries
        .iter()
        .map(|(rel, e)| (rel.to_string(), e.clone()))
        .collect()
}

fn plan_of(local: &LocalTree, remote: &RemoteTree, delete: bool) -> PullPlan {
    let protected = Protected::default();
    plan(
        local,
        remote,
        PullOptions {
            delete,
            ..options(&protected)
        },
    )
}

/// The options of a plain pull (no --delete, no --checksum) with `protected`.
fn options(protected: &Protected) -> PullOptions<'_> {
    PullOptions {
        delete: false,
        protected,
        allow_deletions: true,
        checksum: false,
    }
}

fn rels(downloads: &[Download]) -> Vec<&str> {
    downloads.iter().map(|d| d.rel.as_str()).collect()
}

#[test]
fn new_and_changed_files_come_and_folders_are_made_parents_first() {
    let l = local(&[
        ("same.txt", LocalKind::File, 5, 1000),
        ("resized.txt", LocalKind::File, 5, 1000),
        ("newer.txt", LocalKind::File, 5, 1000),
    ]);
    let r = remote(&[
        ("a", dir()),
        ("a/b", dir()),
        ("a/b/new.txt", file(3, 500)),
        ("same.txt", file(5, 1000)),
        ("resized.txt", file(6, 1000)),
        // Listed as 16:40, minute precision: the true time may be 16:40:59, after the local
        // one only if the minute starts after it.
        ("newer.txt", file(5, 1020)),
    ]);
    let p = plan_of(&l, &r, false);
    assert_eq!(p.mkdirs, ["a", "a/b"]);
    assert_eq!(
        rels(&p.downloads),
        ["a/b/new.txt", "newer.txt", "resized.txt"]
    );
    assert_eq!(p.unchanged, ["same.txt"]);
    assert_eq!(p.deletions(), 0);
}

#[test]
fn a_remote_time_within_the_local_minute_is_not_newer() {
    let l = local(&[("f", LocalKind::File, 5, 1030)]);
    let p = plan_of(&l, &remote(&[("f", file(5, 1020))]), false);
    assert_eq!(
        p.unchanged,
        ["f"],
        "the listing's minute covers the local time"
    );
}

#[test]
fn delete_removes_what_the_server_lacks_deepest_first_never_what_is_protected() {
    let l = local(&[
        ("gone", LocalKind::Dir, 0, 0),
        ("gone/x", LocalKind::File, 1, 0),
        ("gone/y", LocalKind::Dir, 0, 0),
        ("gone/y/z", LocalKind::File, 1, 0),
        ("kept", LocalKind::Dir, 0, 0),
        ("kept/unlisted", LocalKind::File, 1, 0),
        ("top", LocalKind::File, 1, 0),
    ]);
    let r = remote(&[("kept", dir())]);
    let mut protected = Protected::default();
    protected.insert("kept");
    let opts = PullOptions {
        delete: true,
        protected: &protected,
        allow_deletions: true,
        checksum: false,
    };
    let p = plan(&l, &r, opts);
    let deleted: Vec<&str> = p.delete.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(deleted, ["top", "gone/y/z", "gone/y", "gone/x", "gone"]);
    assert!(
        plan_of(&l, &r, false).delete.is_empty(),
        "only with --delete"
    );
}

#[test]
fn type_changes_make_room_first_and_a_folder_goes_only_with_delete() {
    let l = local(&[
        ("was_file", LocalKind::File, 1, 0),
        ("was_dir", LocalKind::Dir, 0, 0),
        ("was_dir/inner", LocalKind::File, 1, 0),
    ]);
    let r = remote(&[("was_file", dir()), ("was_dir", file(4, 0))]);
    let p = plan_of(&l, &r, false);
    assert_eq!(p.replace, [("was_file".to_string(), LocalKind::File)]);
    assert_eq!(p.mkdirs, ["was_file"]);
    assert!(p.blocked[0].1.contains("use --delete"), "{:?}", p.blocked);
    let p = plan_of(&l, &r, true);
    let replaced: Vec<&str> = p.replace.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(replaced, ["was_dir/inner", "was_dir", "was_file"]);
    assert_eq!(rels(&p.downloads), ["was_dir"]);
    assert!(
        p.delete.is_empty(),
        "the folder's content is replaced, not deleted twice"
    );
}

#[test]
fn without_deletions_allowed_a_type_change_is_blocked_with_what_is_below() {
    let l = local(&[("x", LocalKind::File, 1, 0)]);
    let r = remote(&[("x", dir()), ("x/y", file(1, 0))]);
    let protected = Protected::default();
    let opts = PullOptions {
        delete: true,
        protected: &protected,
        allow_deletions: false,
        checksum: false,
    };
    let p = plan(&l, &r, opts);
    assert_eq!(p.blocked.len(), 1, "{:?}", p.blocked);
    assert!(p.downloads.is_empty() && p.mkdirs.is_empty() && p.replace.is_empty());
}

#[test]
fn names_equal_but_for_case_all_collide() {
    let r = remote(&[
        ("A.txt", file(1, 0)),
        ("a.txt", file(1, 0)),
        ("b.txt", file(1, 0)),
        ("d", dir()),
        ("d/X", file(1, 0)),
        ("D", dir()),
        ("e/x", file(1, 0)),
    ]);
    assert_eq!(case_collisions(&r), ["A.txt", "D", "a.txt", "d"]);
}

#[test]
fn delete_keeps_a_local_path_that_differs_from_a_remote_one_only_in_case() {
    // Renamed on the server from photos/ to Photos/: on a case-insensitive disk the download
    // of Photos/a.jpg is photos/a.jpg, which --delete must not remove afterwards.
    let here = local(&[
        ("old.txt", LocalKind::File, 1, 0),
        ("photos", LocalKind::Dir, 0, 0),
        ("photos/a.jpg", LocalKind::File, 1, 0),
    ]);
    let there = remote(&[("Photos", dir()), ("Photos/a.jpg", file(1, 0))]);
    let plan = plan_of(&here, &there, true);
    assert_eq!(plan.delete, [("old.txt".to_string(), LocalKind::File)]);
    assert_eq!(plan.kept_for_case, ["photos", "photos/a.jpg"]);
}

#[test]
fn with_checksum_same_sizes_are_verified_whatever_the_times_other_sizes_downloaded_empty_kept() {
    // (name, local size and time, remote size and time)
    let files = [
        ("same.txt", 3, 500, 500),
        ("older.txt", 3, 100, 200),
        ("longer.txt", 4, 900, 100),
        ("empty.txt", 0, 100, 200),
    ];
    let l = local(&files.map(|(rel, size, t, _)| (rel, LocalKind::File, size, t)));
    let mut r = remote(&files.map(|(rel, size, _, t)| (rel, file(size.min(3), t))));
    r.insert("new.txt".into(), file(3, 100));
    let protected = Protected::default();
    let opts = PullOptions {
        checksum: true,
        ..options(&protected)
    };
    let p = plan(&l, &r, opts);
    assert_eq!(rels(&p.verify), ["older.txt", "same.txt"]);
    assert_eq!(rels(&p.downloads), ["longer.txt", "new.txt"]);
    // Two empty files hold the same bytes: nothing to hash.
    assert_eq!(p.unchanged, ["empty.txt"]);
}

#[test]
fn folders_get_their_remote_times_deepest_first_unless_blocked_protected_or_unknown() {
    let at = |unix| RemoteEntry {
        mtime: Some(RemoteTime {
            unix,
            precision: TimePrecision::Second,
        }),
        ..dir()
    };
    let l = local(&[
        ("kept", LocalKind::Dir, 0, 0),
        ("was_file", LocalKind::File, 1, 0),
    ]);
    let r = remote(&[
        ("a", at(10)),
        ("a/b", at(20)),
        ("a/b/f", file(1, 0)),
        ("a/c", at(30)),
        ("kept", at(40)),
        ("unlisted", at(50)),
        ("unlisted/sub", at(60)),
        (
            "untimed",
            RemoteEntry {
                mtime: None,
                ..dir()
            },
        ),
        ("was_file", at(70)),
        ("was_file/sub", at(80)),
    ]);
    let mut protected = Protected::default();
    protected.insert("unlisted");
    // --max-delete: the file in the way stays, so no folder comes in its place.
    let opts = PullOptions {
        allow_deletions: false,
        ..options(&protected)
    };
    let p = plan(&l, &r, opts);
    assert!(p.blocked.iter().any(|(rel, _)| rel == "was_file"), "{p:?}");
    let expected = [("kept", 40), ("a/c", 30), ("a/b", 20), ("a", 10)];
    let expected: Vec<(String, i64)> = expected.map(|(r, t)| (r.to_string(), t)).into();
    assert_eq!(p.folder_times, expected);
}
