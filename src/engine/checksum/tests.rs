//! The `--checksum` decisions on files present on both sides, and the manifest a run writes:
//! what it claims after each completed upload, and never before.

use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::engine::plan::{self, ContentCheck, PlanOptions, Protected, Verdict};
use crate::ftp::listing::{EntryKind, RemoteEntry, RemoteTime, TimePrecision};
use crate::local::filter::Filter;
use crate::local::{scan, LocalEntry, ScanOptions};
use crate::state::Record;

const T: i64 = 1_700_000_000;

fn hash(content: &str) -> String {
    blake3::hash(content.as_bytes()).to_hex().to_string()
}

fn entry(content: &str, remote_mtime: Option<i64>) -> Entry {
    Entry {
        size: content.len() as u64,
        blake3: hash(content),
        remote_size: content.len() as u64,
        remote_mtime,
        remote_precision: 1,
        adopted: false,
    }
}

fn listed(name: &str, size: u64, mtime: Option<i64>) -> RemoteEntry {
    RemoteEntry {
        name: name.into(),
        kind: EntryKind::File,
        link: None,
        size,
        mtime: mtime.map(|unix| RemoteTime {
            unix,
            precision: TimePrecision::Second,
        }),
    }
}

fn file(size: u64) -> LocalEntry {
    LocalEntry {
        kind: LocalKind::File,
        size,
        mtime: T,
        mtime_ns: T * 1_000_000_000,
    }
}

#[test]
fn files_are_judged_by_content_then_by_the_listing() {
    let mut manifest = Manifest::default();
    manifest.files.insert("a".into(), entry("aaa", Some(T)));
    let none = HashMap::new();
    let judge = |local_hash: Option<&str>, remote: RemoteEntry| {
        let hashes: LocalHashes = [("a".to_string(), local_hash.map(hash))].into();
        let check = ContentCheck {
            manifest: &manifest,
            hashes: &hashes,
            server_same: &none,
            adopt: false,
        };
        check.judge("a", &file(3), &remote)
    };
    let unchanged = Verdict::Unchanged { by_hash: true };
    assert_eq!(judge(Some("aaa"), listed("a", 3, Some(T))), unchanged);
    // The server changed it: another size, or another time.
    assert_eq!(judge(Some("aaa"), listed("a", 4, Some(T))), Verdict::Drift);
    assert_eq!(
        judge(Some("aaa"), listed("a", 3, Some(T + 60))),
        Verdict::Drift
    );
    // A listing without times says nothing against it.
    assert_eq!(judge(Some("aaa"), listed("a", 3, None)), unchanged);
    assert_eq!(
        judge(Some("aab"), listed("a", 3, Some(T))),
        Verdict::Changed { by_hash: true }
    );
    // Changed while it was hashed: not known to be the same.
    assert_eq!(
        judge(None, listed("a", 3, Some(T))),
        Verdict::Changed { by_hash: false }
    );
}

#[test]
fn without_an_entry_same_size_files_need_the_server_s_hash_or_adopt() {
    let manifest = Manifest::default();
    let mut hashes = LocalHashes::new();
    for f in ["same", "differs", "unasked", "empty"] {
        hashes.insert(f.into(), Some(hash(f)));
    }
    let server_same: HashMap<String, bool> =
        [("same".to_string(), true), ("differs".to_string(), false)].into();
    let check = ContentCheck {
        manifest: &manifest,
        hashes: &hashes,
        server_same: &server_same,
        adopt: false,
    };
    let judge = |c: &ContentCheck<'_>, rel: &str, size| {
        c.judge(rel, &file(size), &listed(rel, size, Some(T)))
    };
    assert_eq!(
        judge(&check, "same", 5),
        Verdict::Unchanged { by_hash: true }
    );
    assert_eq!(
        judge(&check, "differs", 5),
        Verdict::Changed { by_hash: true }
    );
    assert_eq!(
        judge(&check, "unasked", 5),
        Verdict::Changed { by_hash: false }
    );
    assert_eq!(
        judge(&check, "empty", 0),
        Verdict::Unchanged { by_hash: false }
    );
    assert_eq!(
        check.judge("unasked", &file(5), &listed("unasked", 6, Some(T))),
        Verdict::Changed { by_hash: false }
    );
    let adopting = ContentCheck {
        adopt: true,
        ..check
    };
    assert_eq!(
        judge(&adopting, "unasked", 5),
        Verdict::Unchanged { by_hash: false }
    );
    // The server's "differs" wins over --adopt.
    assert_eq!(
        judge(&adopting, "differs", 5),
        Verdict::Changed { by_hash: true }
    );
}

/// A run over a real local tree: `a` changed, `b` unchanged, `c` new, `d` gone locally, `e`
/// unchanged without an entry (adopted).
#[test]
fn the_manifest_claims_an_upload_only_once_it_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, content: &str| std::fs::write(dir.path().join(rel), content).unwrap();
    write("a", "new a");
    write("b", "b");
    write("c", "c");
    write("e", "e");
    let filter = Filter::default();
    let options = ScanOptions {
        max_depth: None,
        filter: &filter,
        follow_symlinks: false,
    };
    let local = scan(dir.path(), options).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hashes = runtime
        .block_on(async { hashing::spawn(dir.path(), &local).await })
        .unwrap();
    let mut old = Manifest::default();
    old.files.insert("a".into(), entry("old a", Some(T)));
    old.files.insert("b".into(), entry("b", Some(T)));
    old.files.insert("d".into(), entry("d", Some(T)));
    let remote: RemoteTree = [
        ("a", listed("a", 5, Some(T))),
        ("b", listed("b", 1, Some(T))),
        ("d", listed("d", 1, Some(T))),
        ("e", listed("e", 1, Some(T + 5))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let server_same = HashMap::new();
    let (record, protected) = (Record::new(), Protected::default());
    let plan = plan::plan(
        &local,
        &remote,
        PlanOptions {
            root_exists: true,
            delete: true,
            filter: &filter,
            record: &record,
            leftovers: &[],
            protected: &protected,
            allow_deletions: true,
            content: Some(ContentCheck {
                manifest: &old,
                hashes: &hashes,
                server_same: &server_same,
                adopt: true,
            }),
        },
    );
    let cfg = config::Checksum {
        manifest: ".ftpsync-manifest.json".into(),
        manifest_rel: Some(".ftpsync-manifest.json".into()),
        adopt: true,
        excludes: vec!["*.tmp".into()],
    };
    let inputs = Inputs {
        cfg: &cfg,
        read: Some(old.clone()),
        scope: &Scope::Everything,
        local: &local,
        remote: &remote,
        plan: &plan,
        hashes: &hashes,
        server_same: &server_same,
    };
    let mut cp = Checkpoints::new(inputs, dir.path().to_path_buf());
    let claims = |cp: &Checkpoints| cp.manifest.files.clone();
    // Before any upload: no a (to upload: its old entry would outlive its replacement), b
    // kept, no c, no d (gone), e adopted with what the listing says.
    let before = claims(&cp);
    assert!(!before.contains_key("a"));
    assert!(
        cp.prewrite,
        "the server's manifest has a, which is to be uploaded"
    );
    assert_eq!(before["b"], old.files["b"]);
    assert!(!before.contains_key("c") && !before.contains_key("d"));
    assert!(before["e"].adopted);
    assert_eq!(before["e"].remote_mtime, Some(T + 5));
    assert_eq!(cp.manifest.excludes, ["*.tmp"]);
    assert_eq!(
        cp.due(),
        None,
        "nothing to write before an upload completes"
    );

    cp.uploaded("c", true);
    let c = &claims(&cp)["c"];
    assert_eq!(c.blake3, hash("c"));
    assert_eq!(
        Some(c.remote_mtime.unwrap()),
        local.entries.get("c").map(|e| e.mtime)
    );
    assert!(cp.due().is_some());
    assert!(!claims(&cp).contains_key("a"), "a is not done yet");

    // a changed again after it was hashed: uploaded, but its content is not vouched for.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write("a", "newer");
    cp.uploaded("a", false);
    assert!(!claims(&cp).contains_key("a"));
    let bytes = cp.final_bytes().expect("differs from the server's");
    assert_eq!(Manifest::parse(&bytes).unwrap(), cp.manifest);
}

#[test]
fn a_manifest_that_would_not_change_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = dir.path();
    let cp = Checkpoints {
        path: "m".into(),
        read: Some(Manifest::default()),
        manifest: Manifest::default(),
        pending: HashMap::new(),
        local_root: path.to_path_buf(),
        dirty: false,
        in_flight: None,
        next: Instant::now(),
        wrote: false,
        untimed: Vec::new(),
        prewrite: false,
        sending: None,
    };
    assert_eq!(cp.final_bytes(), None);
}

#[test]
fn after_a_write_the_final_manifest_is_compared_with_what_the_server_holds_now() {
    // The entries of files to upload are written out first; an upload of the same content
    // and time then brings back the manifest read at the start. The server holds the
    // written one, without the entry: the final write must still happen.
    let dir = tempfile::tempdir().unwrap();
    let mut read = Manifest::default();
    read.files.insert("a".into(), entry("x", Some(T)));
    let mut cp = Checkpoints {
        path: "m".into(),
        read: Some(read.clone()),
        manifest: Manifest::default(),
        pending: HashMap::new(),
        local_root: dir.path().to_path_buf(),
        dirty: true,
        in_flight: None,
        next: Instant::now(),
        wrote: false,
        untimed: Vec::new(),
        prewrite: true,
        sending: None,
    };
    // The prewrite: the manifest without "a" sent, and written.
    cp.sending = Some(cp.manifest.clone());
    cp.in_flight = Some(7);
    let done = Ok(crate::engine::job::Outcome::Done {
        bytes: 0,
        time_set: false,
    });
    assert!(cp.take_report(7, &done));
    // The upload brings the same entry back.
    cp.manifest = read;
    assert!(
        cp.final_bytes().is_some(),
        "the server holds the manifest without \"a\""
    );
}

#[test]
fn a_manifest_path_is_placed_in_the_remote_folder_whatever_its_spelling() {
    let at = |path, root, login| super::inside(path, root, login);
    assert_eq!(
        at("/www/m.json", "www", Some("/")).as_deref(),
        Some("m.json")
    );
    assert_eq!(
        at("/home/u/www/a/m", "www", Some("/home/u/")).as_deref(),
        Some("a/m")
    );
    assert_eq!(
        at("www/m.json", "/home/u/www", Some("/home/u")).as_deref(),
        Some("m.json")
    );
    assert_eq!(at("/m.json", "", Some("/")).as_deref(), Some("m.json"));
    assert_eq!(at("/m.json", "/", None).as_deref(), Some("m.json"));
    assert_eq!(at("/www2/m.json", "www", Some("/")), None);
    assert_eq!(at("/www", "www", Some("/")), None);
    assert_eq!(
        at("/www/m.json", "www", None),
        None,
        "no login folder: unknown"
    );
    assert_eq!(at("/a/../www/m", "www", Some("/")), None);
}
