//! Checks on the result of a sync: [`assert_mirror`] (same paths, kinds and bytes),
//! [`snapshot`] / [`changed_files`] (was anything touched?), [`tree_digest`] (was anything
//! changed?).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Relative paths (with `/`) of everything under `dir`, except `dir` itself. Symlinks are not
/// followed into, but count as what they point to.
fn entries(dir: &Path) -> BTreeMap<String, PathBuf> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|entry| {
            let entry = entry.unwrap_or_else(|err| panic!("walk {}: {err}", dir.display()));
            let rel = entry
                .path()
                .strip_prefix(dir)
                .expect("walkdir stays under its root")
                .to_string_lossy()
                .into_owned();
            (rel, entry.into_path())
        })
        .collect()
}

fn kind(path: &Path) -> &'static str {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => "dir",
        Ok(meta) if meta.is_file() => "file",
        Ok(_) => "special file",
        Err(_) => "broken symlink",
    }
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// Panics with a readable list of differences unless `remote` is an exact mirror of `local`:
/// same relative paths, same kind (file or folder), same bytes.
pub fn assert_mirror(local: &Path, remote: &Path) {
    assert_mirror_except(local, remote, &[]);
}

/// Like [`assert_mirror`], skipping relative paths that start with one of `ignore` (e.g.
/// `".ftpsync"` also skips `.ftpsync.tmp`, `"cache/"` skips the folder `cache` and its content).
pub fn assert_mirror_except(local: &Path, remote: &Path, ignore: &[&str]) {
    let ignored = |rel: &str| {
        ignore
            .iter()
            .any(|prefix| rel.starts_with(prefix) || prefix.strip_suffix('/') == Some(rel))
    };
    let local_entries = entries(local);
    let remote_entries = if remote.exists() {
        entries(remote)
    } else {
        BTreeMap::new()
    };
    let mut problems = Vec::new();
    if !remote.is_dir() {
        problems.push(format!("remote folder {} does not exist", remote.display()));
    }
    for (rel, local_path) in &local_entries {
        if ignored(rel) {
            continue;
        }
        let Some(remote_path) = remote_entries.get(rel) else {
            problems.push(format!("only local: {rel}"));
            continue;
        };
        let (local_kind, remote_kind) = (kind(local_path), kind(remote_path));
        if local_kind != remote_kind {
            problems.push(format!(
                "kind: {rel} (local {local_kind}, remote {remote_kind})"
            ));
        } else if local_kind == "file" {
            let (l, r) = (read(local_path), read(remote_path));
            if l != r {
                problems.push(format!(
                    "differs: {rel} (local {} bytes, remote {} bytes)",
                    l.len(),
                    r.len()
                ));
            }
        }
    }
    for rel in remote_entries.keys() {
        if !ignored(rel) && !local_entries.contains_key(rel) {
            problems.push(format!("only remote: {rel}"));
        }
    }
    if !problems.is_empty() {
        panic!(
            "{} is not a mirror of {}:\n  {}",
            remote.display(),
            local.display(),
            problems.join("\n  ")
        );
    }
}

/// What a file looked like at one moment; any write changes `ctime_ns`, even when the mtime is
/// put back afterwards, and a replaced file has a new `ino`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    pub ino: u64,
    pub ctime_ns: i128,
    pub mtime_ns: i128,
}

/// A [`FileStamp`] for every file under `dir` (folders are left out), by relative path.
pub fn snapshot(dir: &Path) -> BTreeMap<String, FileStamp> {
    entries(dir)
        .into_iter()
        .filter_map(|(rel, path)| {
            let meta = fs::symlink_metadata(&path)
                .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()));
            meta.is_file().then(|| {
                let stamp = FileStamp {
                    len: meta.len(),
                    ino: meta.ino(),
                    ctime_ns: i128::from(meta.ctime()) * 1_000_000_000
                        + i128::from(meta.ctime_nsec()),
                    mtime_ns: i128::from(meta.mtime()) * 1_000_000_000
                        + i128::from(meta.mtime_nsec()),
                };
                (rel, stamp)
            })
        })
        .collect()
}

/// Files added, removed or touched in any way between two [`snapshot`]s, sorted.
pub fn changed_files(
    before: &BTreeMap<String, FileStamp>,
    after: &BTreeMap<String, FileStamp>,
) -> Vec<String> {
    let mut changed: Vec<String> = before
        .iter()
        .filter(|(rel, stamp)| after.get(*rel) != Some(stamp))
        .map(|(rel, _)| rel.clone())
        .collect();
    changed.extend(
        after
            .keys()
            .filter(|rel| !before.contains_key(*rel))
            .cloned(),
    );
    changed.sort();
    changed
}

/// One entry of a [`tree_digest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
}

/// Everything under `dir` with file contents, to check with `assert_eq!` that a tree was left
/// unchanged (trees in tests are small).
pub fn tree_digest(dir: &Path) -> BTreeMap<String, Node> {
    entries(dir)
        .into_iter()
        .map(|(rel, path)| {
            let meta = fs::symlink_metadata(&path)
                .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()));
            let node = if meta.is_symlink() {
                Node::Symlink(
                    fs::read_link(&path)
                        .unwrap_or_else(|err| panic!("readlink {}: {err}", path.display())),
                )
            } else if meta.is_dir() {
                Node::Dir
            } else {
                Node::File(read(&path))
            };
            (rel, node)
        })
        .collect()
}
