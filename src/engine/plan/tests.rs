//! The planner's decisions, case by case.

use super::*;
use crate::ftp::listing::{RemoteTime, TimePrecision};
use crate::local::LocalProblem;
use crate::state::Seen;

const T: i64 = 1_700_000_000;

fn local(entries: &[(&str, Option<u64>, i64)]) -> LocalTree {
    LocalTree {
        entries: entries
            .iter()
            .map(|&(rel, size, mtime)| {
                let entry = LocalEntry {
                    kind: if size.is_some() {
                        LocalKind::File
                    } else {
                        LocalKind::Dir
                    },
                    size: size.unwrap_or(0),
                    mtime,
                    mtime_ns: mtime * 1_000_000_000,
                };
                (rel.to_string(), entry)
            })
            .collect(),
        problems: Vec::<LocalProblem>::new(),
    }
}

/// (path, kind, size, listed time)
type Listed<'a> = (&'a str, EntryKind, u64, Option<(i64, TimePrecision)>);

fn remote(entries: &[Listed<'_>]) -> RemoteTree {
    entries
        .iter()
        .map(|&(rel, kind, size, mtime)| {
            let entry = RemoteEntry {
                name: rel.rsplit('/').next().unwrap().to_string(),
                kind,
                link: None,
                size,
                mtime: mtime.map(|(unix, precision)| RemoteTime { unix, precision }),
            };
            (rel.to_string(), entry)
        })
        .collect()
}

struct Case {
    leftovers: Vec<String>,
    filter: Filter,
    record: Record,
    delete: bool,
    root_exists: bool,
    protected: Protected,
    allow_deletions: bool,
}

impl Case {
    fn new() -> Self {
        Case {
            leftovers: Vec::new(),
            filter: Filter::default(),
            record: Record::new(),
            delete: false,
            root_exists: true,
            protected: Protected::default(),
            allow_deletions: true,
        }
    }
    fn plan(&self, l: &LocalTree, r: &RemoteTree) -> Plan {
        plan(
            l,
            r,
            PlanOptions {
                root_exists: self.root_exists,
                delete: self.delete,
                filter: &self.filter,
                record: &self.record,
                leftovers: &self.leftovers,
                protected: &self.protected,
                allow_deletions: self.allow_deletions,
                content: None,
            },
        )
    }
}

fn ops(p: &Plan) -> Vec<Op> {
    p.actions.iter().map(|a| a.op.clone()).collect()
}

fn index_of(p: &Plan, op: &Op) -> usize {
    p.actions
        .iter()
        .position(|a| &a.op == op)
        .unwrap_or_else(|| panic!("{op:?} not planned in {:?}", ops(p)))
}

fn up(rel: &str, size: u64, mtime: i64) -> Op {
    Op::Upload {
        rel: rel.into(),
        size,
        mtime,
    }
}

#[test]
fn empty_remote_gets_folders_before_their_files() {
    let l = local(&[("a", None, T), ("a/f", Some(3), T), ("top", Some(1), T)]);
    let p = Case::new().plan(&l, &RemoteTree::new());
    let mkdir = index_of(&p, &Op::Mkdir("a".into()));
    let file = index_of(&p, &up("a/f", 3, T));
    assert_eq!(p.actions[file].after, vec![mkdir]);
    assert!(p.actions[index_of(&p, &up("top", 1, T))].after.is_empty());
}

#[test]
fn missing_root_is_created_first() {
    let mut case = Case::new();
    case.root_exists = false;
    let l = local(&[("f", Some(1), T)]);
    let p = case.plan(&l, &RemoteTree::new());
    assert_eq!(p.actions[0].op, Op::MakeRoot);
    assert_eq!(p.actions[index_of(&p, &up("f", 1, T))].after, vec![0]);
}

#[test]
fn unchanged_file_with_equal_time_is_skipped() {
    let l = local(&[("f", Some(5), T)]);
    let r = remote(&[("f", EntryKind::File, 5, Some((T, TimePrecision::Second)))]);
    let p = Case::new().plan(&l, &r);
    assert!(p.actions.is_empty());
    assert_eq!(p.unchanged, ["f"]);
}

#[test]
fn size_change_is_uploaded() {
    let l = local(&[("f", Some(6), T)]);
    let r = remote(&[("f", EntryKind::File, 5, Some((T, TimePrecision::Second)))]);
    assert_eq!(ops(&Case::new().plan(&l, &r)), [up("f", 6, T)]);
}

#[test]
fn local_newer_beyond_listing_precision_is_uploaded() {
    let l = local(&[("f", Some(5), T + 60)]);
    let minute = remote(&[("f", EntryKind::File, 5, Some((T, TimePrecision::Minute)))]);
    assert_eq!(ops(&Case::new().plan(&l, &minute)), [up("f", 5, T + 60)]);
    // Within the minute the listing shows, the times are the same.
    let l = local(&[("f", Some(5), T + 59)]);
    assert!(Case::new().plan(&l, &minute).actions.is_empty());
}

#[test]
fn year_only_listing_dates_compare_by_day() {
    let l = local(&[("f", Some(5), T + 3600)]);
    let r = remote(&[("f", EntryKind::File, 5, Some((T, TimePrecision::Day)))]);
    assert!(Case::new().plan(&l, &r).actions.is_empty());
}

#[test]
fn remote_newer_than_local_is_kept_when_no_record_says_otherwise() {
    // A server that stamps the upload time instead of ours.
    let l = local(&[("f", Some(5), T)]);
    let r = remote(&[(
        "f",
        EntryKind::File,
        5,
        Some((T + 100, TimePrecision::Second)),
    )]);
    assert!(Case::new().plan(&l, &r).actions.is_empty());
}

#[test]
fn record_of_an_older_version_forces_upload_even_with_same_size_and_close_time() {
    let mut case = Case::new();
    case.record.insert(
        "f".into(),
        Seen {
            size: 5,
            mtime_ns: T * 1_000_000_000 - 1,
            time_set: false,
        },
    );
    let l = local(&[("f", Some(5), T)]);
    let r = remote(&[(
        "f",
        EntryKind::File,
        5,
        Some((T + 100, TimePrecision::Second)),
    )]);
    assert_eq!(ops(&case.plan(&l, &r)), [up("f", 5, T)]);
}

#[test]
fn matching_record_skips_even_without_remote_times() {
    let mut case = Case::new();
    case.record.insert(
        "f".into(),
        Seen {
            size: 5,
            mtime_ns: T * 1_000_000_000,
            time_set: false,
        },
    );
    let l = local(&[("f", Some(5), T)]);
    let r = remote(&[("f", EntryKind::File, 5, None)]);
    assert!(case.plan(&l, &r).actions.is_empty());
    // Without the record there is no way to know: upload.
    assert_eq!(ops(&Case::new().plan(&l, &r)), [up("f", 5, T)]);
}

#[test]
fn file_becoming_folder_deletes_the_file_first() {
    let l = local(&[("x", None, T), ("x/f", Some(1), T)]);
    let r = remote(&[("x", EntryKind::File, 9, None)]);
    let p = Case::new().plan(&l, &r);
    let del = index_of(&p, &Op::DeleteFile("x".into()));
    let mkdir = index_of(&p, &Op::Mkdir("x".into()));
    let file = index_of(&p, &up("x/f", 1, T));
    assert_eq!(p.actions[mkdir].after, vec![del]);
    assert_eq!(p.actions[file].after, vec![mkdir]);
    assert_eq!(p.actions[del].phase, Phase::Transfer);
}

/// A remote folder `x` holding a file and a subfolder with a file; locally `x` is a file.
fn folder_become_file() -> (LocalTree, RemoteTree) {
    let l = local(&[("x", Some(4), T)]);
    let set = Some((T, TimePrecision::Second));
    let r = remote(&[
        ("x", EntryKind::Dir, 0, None),
        ("x/a", EntryKind::File, 1, set),
        ("x/sub", EntryKind::Dir, 0, None),
        ("x/sub/b", EntryKind::File, 1, set),
    ]);
    (l, r)
}

fn recorded(case: &mut Case, paths: &[&str]) {
    for rel in paths {
        case.record.insert(
            rel.to_string(),
            Seen {
                size: 1,
                mtime_ns: T * 1_000_000_000,
                time_set: false,
            },
        );
    }
}

#[test]
fn folder_becoming_file_removes_the_tree_children_first_when_ftpsync_put_it_all_there() {
    let (l, r) = folder_become_file();
    let mut case = Case::new();
    recorded(&mut case, &["x/a", "x/sub/b"]);
    let p = case.plan(&l, &r);
    let del_a = index_of(&p, &Op::DeleteFile("x/a".into()));
    let del_b = index_of(&p, &Op::DeleteFile("x/sub/b".into()));
    let rm_sub = index_of(&p, &Op::RemoveDir("x/sub".into()));
    let rm_x = index_of(&p, &Op::RemoveDir("x".into()));
    let upload = index_of(&p, &up("x", 4, T));
    assert_eq!(p.actions[rm_sub].after, vec![del_b]);
    let mut after_x = p.actions[rm_x].after.clone();
    after_x.sort();
    let mut expected = vec![del_a, rm_sub];
    expected.sort();
    assert_eq!(after_x, expected);
    assert_eq!(p.actions[upload].after, vec![rm_x]);
    assert_eq!(p.deletions(), 4);
}

// Regression: without --delete, a folder turned file deleted files that only ever existed on
// the server.
#[test]
fn folder_becoming_file_is_a_conflict_without_delete_when_the_server_has_files_of_its_own() {
    let (l, r) = folder_become_file();
    let mut case = Case::new();
    recorded(&mut case, &["x/a"]);
    let p = case.plan(&l, &r);
    assert!(
        p.actions.is_empty(),
        "nothing deleted or uploaded: {:?}",
        ops(&p)
    );
    assert_eq!(p.blocked.len(), 1);
    assert_eq!(p.blocked[0].0, "x");
    assert!(
        p.blocked[0]
            .1
            .contains("2 entries not in the local tree; use --delete"),
        "{}",
        p.blocked[0].1
    );
}

// Regression: with --delete, the folder's content was planned twice (type change, then
// extraneous), and the second DELE failed.
// Regression: a recorded file that someone rewrote on the server (same size, another time),
// or an empty folder someone made, went without --delete.
#[test]
fn folder_becoming_file_is_a_conflict_when_the_server_changed_what_ftpsync_put_there() {
    let (l, mut r) = folder_become_file();
    let mut case = Case::new();
    recorded(&mut case, &["x/a", "x/sub/b"]);
    r.get_mut("x/a").unwrap().mtime = Some(RemoteTime {
        unix: T + 3600,
        precision: TimePrecision::Second,
    });
    let p = case.plan(&l, &r);
    assert_eq!(p.deletions(), 0, "{:?}", ops(&p));
    assert!(p.blocked[0].1.contains("1 entry not in"), "{:?}", p.blocked);

    let (l, mut r) = folder_become_file();
    r.insert(
        "x/theirs".into(),
        remote(&[("x/theirs", EntryKind::Dir, 0, None)])["x/theirs"].clone(),
    );
    let p = case.plan(&l, &r);
    assert_eq!(p.deletions(), 0, "{:?}", ops(&p));
}

#[test]
fn a_local_folder_or_file_that_could_not_be_read_replaces_nothing() {
    let mut case = Case::new();
    case.protected.insert("d");
    case.protected.insert("f");
    let l = local(&[("d", None, T), ("f", Some(1), T)]);
    let r = remote(&[
        ("d", EntryKind::File, 1, None),
        ("f", EntryKind::Symlink, 1, None),
    ]);
    let p = case.plan(&l, &r);
    assert_eq!(p.deletions(), 0, "{:?}", ops(&p));
    assert_eq!(p.blocked.len(), 2);
}

#[test]
fn folder_becoming_file_with_delete_plans_each_deletion_once() {
    let (l, r) = folder_become_file();
    let mut case = Case::new();
    case.delete = true;
    let p = case.plan(&l, &r);
    let mut all = ops(&p);
    let n = all.len();
    all.sort_by_key(|op| format!("{op:?}"));
    all.dedup();
    assert_eq!(all.len(), n, "an operation planned twice: {:?}", ops(&p));
    assert_eq!(p.deletions(), 4);
    index_of(&p, &up("x", 4, T));
    assert!(p.blocked.is_empty());
}

#[test]
fn nothing_is_deleted_or_replaced_when_deletions_are_not_allowed() {
    let (l, r) = folder_become_file();
    let mut case = Case::new();
    case.delete = true;
    case.allow_deletions = false;
    let mut r2 = r.clone();
    r2.insert(
        "extra".into(),
        remote(&[("extra", EntryKind::File, 1, None)])["extra"].clone(),
    );
    let p = case.plan(&l, &r2);
    assert_eq!(p.deletions(), 0, "{:?}", ops(&p));
    assert!(!ops(&p).contains(&up("x", 4, T)));
    assert_eq!(p.blocked.len(), 1);
    // A local folder where the server has a file: the folder and its content wait.
    let l = local(&[("f", None, T), ("f/in", Some(1), T)]);
    let r = remote(&[("f", EntryKind::File, 1, None)]);
    let p = case.plan(&l, &r);
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
    assert_eq!(p.blocked.len(), 1);
}

// Regression: `chmod 000` on a local folder, then --delete, deleted every remote file in it.
#[test]
fn nothing_is_deleted_at_or_below_a_protected_path() {
    let mut case = Case::new();
    case.delete = true;
    case.protected.insert("locked");
    case.protected.insert("link");
    let l = local(&[("locked", None, T)]);
    let r = remote(&[
        ("locked", EntryKind::Dir, 0, None),
        ("locked/a", EntryKind::File, 1, None),
        ("locked/sub", EntryKind::Dir, 0, None),
        ("locked/sub/b", EntryKind::File, 1, None),
        ("link", EntryKind::Dir, 0, None),
        ("link/c", EntryKind::File, 1, None),
        ("gone", EntryKind::File, 1, None),
    ]);
    let p = case.plan(&l, &r);
    assert_eq!(ops(&p), [Op::DeleteFile("gone".into())]);
    let mut everything = Case::new();
    everything.delete = true;
    everything.protected.insert("");
    assert!(everything.plan(&l, &r).actions.is_empty());
}

#[test]
fn a_folder_with_a_protected_part_is_not_replaced_by_a_file() {
    let (l, r) = folder_become_file();
    let mut case = Case::new();
    case.delete = true;
    case.protected.insert("x/sub");
    let p = case.plan(&l, &r);
    assert_eq!(p.deletions(), 0, "{:?}", ops(&p));
    assert_eq!(p.blocked.len(), 1);
    assert!(p.blocked[0].1.contains("could not be listed"));
}

#[test]
fn protection_covers_a_path_its_subtree_and_nothing_beside_it() {
    let mut p = Protected::default();
    p.insert("a/b");
    assert!(p.covers("a/b") && p.covers("a/b/c/d"));
    assert!(!p.covers("a") && !p.covers("a/bc") && !p.covers("b"));
    assert!(p.touches("a") && p.touches("a/b") && !p.touches("a/bc"));
}

#[test]
fn extraneous_entries_are_kept_without_delete() {
    let l = local(&[("keep", Some(1), T)]);
    let r = remote(&[
        ("keep", EntryKind::File, 1, Some((T, TimePrecision::Second))),
        ("old", EntryKind::File, 1, None),
    ]);
    assert!(Case::new().plan(&l, &r).actions.is_empty());
}

#[test]
fn delete_removes_extraneous_files_and_trees_in_the_delete_phase() {
    let mut case = Case::new();
    case.delete = true;
    let l = local(&[]);
    let r = remote(&[
        ("old", EntryKind::File, 1, None),
        ("gone", EntryKind::Dir, 0, None),
        ("gone/x", EntryKind::File, 1, None),
    ]);
    let p = case.plan(&l, &r);
    let rm = index_of(&p, &Op::RemoveDir("gone".into()));
    let del_x = index_of(&p, &Op::DeleteFile("gone/x".into()));
    index_of(&p, &Op::DeleteFile("old".into()));
    assert_eq!(p.actions[rm].after, vec![del_x]);
    assert!(p.actions.iter().all(|a| a.phase == Phase::Delete));
    assert_eq!(p.actions.len(), 3, "gone/x is planned once: {:?}", ops(&p));
}

#[test]
fn excluded_remote_entries_are_never_deleted() {
    let mut case = Case::new();
    case.delete = true;
    case.filter = Filter::new(&["*.log".to_string(), "cache/".to_string()], &[]).unwrap();
    let l = local(&[]);
    let r = remote(&[
        ("a.log", EntryKind::File, 1, None),
        ("d", EntryKind::Dir, 0, None),
        ("d/b.log", EntryKind::File, 1, None),
        ("d/c", EntryKind::File, 1, None),
        ("cache", EntryKind::Dir, 0, None),
        ("cache/x", EntryKind::File, 1, None),
    ]);
    let p = case.plan(&l, &r);
    // d keeps b.log, so d itself stays; d/c goes.
    assert_eq!(ops(&p), [Op::DeleteFile("d/c".into())]);
}

#[test]
fn symlink_on_the_server_is_replaced_not_written_through() {
    let l = local(&[("f", Some(2), T)]);
    let r = remote(&[("f", EntryKind::Symlink, 10, None)]);
    let p = Case::new().plan(&l, &r);
    let del = index_of(&p, &Op::DeleteFile("f".into()));
    assert_eq!(p.actions[index_of(&p, &up("f", 2, T))].after, vec![del]);
}

#[test]
fn folder_holding_excluded_entries_cannot_become_a_file() {
    let mut case = Case::new();
    case.filter = Filter::new(&["*.log".to_string()], &[]).unwrap();
    let l = local(&[("x", Some(4), T)]);
    let r = remote(&[
        ("x", EntryKind::Dir, 0, None),
        ("x/a.log", EntryKind::File, 1, None),
    ]);
    let p = case.plan(&l, &r);
    assert_eq!(p.blocked.len(), 1);
    assert!(!ops(&p).contains(&up("x", 4, T)));
}

#[test]
fn leftover_temp_files_are_removed_and_uploads_do_not_wait_for_them() {
    let mut case = Case::new();
    case.leftovers = vec!["d/.f.0123456789abcdef.ftpsync-tmp".into()];
    let l = local(&[("d", None, T), ("d/f", Some(1), T)]);
    let r = remote(&[("d", EntryKind::Dir, 0, None)]);
    let p = case.plan(&l, &r);
    index_of(&p, &Op::Cleanup("d/.f.0123456789abcdef.ftpsync-tmp".into()));
    assert!(p.actions[index_of(&p, &up("d/f", 1, T))].after.is_empty());
    assert_eq!(p.deletions(), 0, "a leftover is not the user's");
}

// Regression: a same-size rewrite on the server kept its new content (exit 0, server differs)
// because the record matched.
#[test]
fn a_recorded_file_whose_time_ftpsync_set_is_sent_again_when_the_server_shows_another_time() {
    let l = local(&[("f", Some(5), T)]);
    let rewritten = remote(&[(
        "f",
        EntryKind::File,
        5,
        Some((T + 500, TimePrecision::Second)),
    )]);
    let mut case = Case::new();
    let mut seen = Seen {
        size: 5,
        mtime_ns: T * 1_000_000_000,
        time_set: true,
    };
    case.record.insert("f".into(), seen);
    assert_eq!(ops(&case.plan(&l, &rewritten)), [up("f", 5, T)]);
    let as_set = remote(&[("f", EntryKind::File, 5, Some((T, TimePrecision::Second)))]);
    assert!(case.plan(&l, &as_set).actions.is_empty());
    // A server that stamps its own time: the record alone decides.
    seen.time_set = false;
    case.record.insert("f".into(), seen);
    assert!(case.plan(&l, &rewritten).actions.is_empty());
}

// Regression: on a server that ignores case, `index.html` renamed `Index.html` locally was
// uploaded over the old file, then --delete deleted `index.html`, which was the new file.
#[test]
fn delete_keeps_a_remote_entry_that_differs_from_a_local_one_only_in_case() {
    let mut case = Case::new();
    case.delete = true;
    let l = local(&[
        ("Index.html", Some(5), T),
        ("Img", None, T),
        ("Img/a.png", Some(1), T),
    ]);
    let r = remote(&[
        (
            "index.html",
            EntryKind::File,
            4,
            Some((T, TimePrecision::Second)),
        ),
        ("img", EntryKind::Dir, 0, None),
        (
            "img/a.png",
            EntryKind::File,
            1,
            Some((T, TimePrecision::Second)),
        ),
        (
            "gone.txt",
            EntryKind::File,
            1,
            Some((T, TimePrecision::Second)),
        ),
    ]);
    let p = case.plan(&l, &r);
    let planned = ops(&p);
    assert!(planned.contains(&up("Index.html", 5, T)), "{planned:?}");
    assert!(
        planned.contains(&Op::DeleteFile("gone.txt".into())),
        "{planned:?}"
    );
    for kept in ["index.html", "img", "img/a.png"] {
        assert!(
            !planned.contains(&Op::DeleteFile(kept.into()))
                && !planned.contains(&Op::RemoveDir(kept.into())),
            "{kept} deleted: {planned:?}"
        );
    }
    assert_eq!(
        p.kept_case_twins,
        [
            ("img".to_string(), "Img".to_string()),
            ("index.html".to_string(), "Index.html".to_string())
        ]
    );
}
