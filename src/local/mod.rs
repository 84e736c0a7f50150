//! The local side: walks the tree to mirror (walkdir), applying the depth limit and excludes, and
//! records what each entry is. Reads metadata only; never modifies anything.

pub(crate) mod filter;
mod gitignore;
pub(crate) mod watch;
pub(crate) mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::local::filter::Filter;

/// What one sync cycle looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The whole tree.
    Everything,
    /// These paths (relative to the root), what lies below them, and the folders above them:
    /// what a change notification reported. Nothing else is examined, listed or deleted.
    Paths(Vec<String>),
}

/// Where a path stands relative to a [`Scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    /// A scoped path or below one.
    Inside,
    /// A folder above a scoped path.
    Above,
    Outside,
}

impl Scope {
    pub(crate) fn relation(&self, rel: &str) -> Relation {
        let Scope::Paths(paths) = self else {
            return Relation::Inside;
        };
        let mut relation = Relation::Outside;
        for p in paths {
            if rel == p || is_below(rel, p) {
                return Relation::Inside;
            }
            if rel.is_empty() || is_below(p, rel) {
                relation = Relation::Above;
            }
        }
        relation
    }
}

/// Whether `path` lies below the folder `dir` (both '/'-separated, relative to the root).
pub(crate) fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// What a local entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalKind {
    File,
    Dir,
}

/// One local file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalEntry {
    pub(crate) kind: LocalKind,
    /// Size in bytes (0 for folders).
    pub(crate) size: u64,
    /// Modification time, whole seconds since the Unix epoch (UTC).
    pub(crate) mtime: i64,
    /// The same, in nanoseconds: two edits within one second still differ here.
    pub(crate) mtime_ns: i64,
}

/// Something in the tree that could not be read or is not mirrored; reported, not fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalProblem {
    /// Path relative to the root (lossy for names that are not UTF-8).
    pub(crate) rel: String,
    pub(crate) message: String,
    /// Whether it counts as a failed item (exit code 1) or is only a notice.
    pub(crate) is_failure: bool,
}

/// The local tree: entries keyed by their '/'-separated path relative to the root.
#[derive(Debug, Default)]
pub(crate) struct LocalTree {
    pub(crate) entries: BTreeMap<String, LocalEntry>,
    pub(crate) problems: Vec<LocalProblem>,
}

impl LocalTree {
    /// Takes `rel` and everything below it out of the tree (what the server holds there is
    /// ftpsync's own); returns whether anything was there.
    pub(crate) fn take_out(&mut self, rel: &str) -> bool {
        let below = format!("{rel}/");
        let before = self.entries.len();
        (self.entries).retain(|path, _| path != rel && !path.starts_with(&below));
        self.entries.len() < before
    }
}

/// The local folder cannot be mirrored at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LocalError {
    #[error("local folder {} does not exist; check the LOCAL_DIR argument", .0.display())]
    Missing(PathBuf),
    #[error("{} is not a folder; LOCAL_DIR must be a directory", .0.display())]
    NotADir(PathBuf),
    #[error("cannot read local folder {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How to walk the local tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanOptions<'a> {
    /// Levels below the root to descend (None: no limit).
    pub(crate) max_depth: Option<usize>,
    /// What to skip.
    pub(crate) filter: &'a Filter,
    /// Upload what symbolic links point at (loops are detected and reported).
    pub(crate) follow_symlinks: bool,
}

/// Walks `root`, skipping what the filter excludes.
pub(crate) fn scan(root: &Path, options: ScanOptions<'_>) -> Result<LocalTree, LocalError> {
    check_root(root)?;
    let mut tree = LocalTree::default();
    walk_into(&mut tree, root, root, 1, options.max_depth, options);
    Ok(tree)
}

/// Like [`scan`], but only for `paths` (relative to the root) and what lies below them, plus
/// the folders above them: what a change notification says needs a look.
pub(crate) fn scan_paths(
    root: &Path,
    paths: &[String],
    options: ScanOptions<'_>,
) -> Result<LocalTree, LocalError> {
    check_root(root)?;
    let mut tree = LocalTree::default();
    for rel in paths {
        let parts: Vec<&str> = rel.split('/').collect();
        let depth = parts.len();
        if options.max_depth.is_some_and(|max| depth > max) {
            continue;
        }
        let ancestors = (1..depth).map(|n| parts[..n].join("/"));
        if ancestors
            .clone()
            .any(|a| options.filter.is_excluded(&a, true))
        {
            continue;
        }
        for ancestor in ancestors {
            if !tree.entries.contains_key(&ancestor) {
                walk_into(&mut tree, root, &root.join(&ancestor), 0, Some(0), options);
            }
        }
        if root.join(rel).symlink_metadata().is_ok() {
            let below = options.max_depth.map(|max| max - depth);
            walk_into(&mut tree, root, &root.join(rel), 0, below, options);
        }
    }
    Ok(tree)
}

/// Whether the folder `root` holds nothing to mirror: no file, link or other non-folder
/// entry at any depth that the filter keeps (folders alone, as a build tool creates them
/// first, are nothing). A folder that cannot be read counts as empty: it is no evidence that
/// anything exists.
pub(crate) fn is_empty(root: &Path, filter: &Filter) -> bool {
    let walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            relative(root, e.path())
                .is_none_or(|rel| !filter.is_excluded(&rel, e.file_type().is_dir()))
        });
    !walk.flatten().any(|e| !e.file_type().is_dir())
}

/// Whether `root` is a readable folder.
pub(crate) fn check_root(root: &Path) -> Result<(), LocalError> {
    let meta = std::fs::metadata(root).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LocalError::Missing(root.to_owned()),
        _ => LocalError::Unreadable {
            path: root.to_owned(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(LocalError::NotADir(root.to_owned()));
    }
    std::fs::read_dir(root).map_err(|source| LocalError::Unreadable {
        path: root.to_owned(),
        source,
    })?;
    Ok(())
}

/// Records what lies at `start` (a path under `root`), from `min_depth` to `max_depth` levels
/// below it.
fn walk_into(
    tree: &mut LocalTree,
    root: &Path,
    start: &Path,
    min_depth: usize,
    max_depth: Option<usize>,
    options: ScanOptions<'_>,
) {
    let filter = options.filter;
    let mut walk = walkdir::WalkDir::new(start)
        .min_depth(min_depth)
        .follow_links(options.follow_symlinks);
    if let Some(depth) = max_depth {
        walk = walk.max_depth(depth);
    }
    let walk = walk.into_iter().filter_entry(|e| {
        relative(root, e.path())
            .is_none_or(|rel| rel.is_empty() || !filter.is_excluded(&rel, e.file_type().is_dir()))
    });
    for item in walk {
        match item {
            Ok(entry) => record(tree, root, &entry),
            Err(err) => {
                let rel = err
                    .path()
                    .map(|p| lossy_relative(root, p))
                    .unwrap_or_default();
                let message = match err.loop_ancestor() {
                    Some(_) => "symbolic link loop; skipped".to_string(),
                    None => format!("cannot read: {}", io_reason(&err)),
                };
                tree.problems.push(LocalProblem {
                    rel,
                    message,
                    is_failure: true,
                });
            }
        }
    }
}

fn record(tree: &mut LocalTree, root: &Path, entry: &walkdir::DirEntry) {
    let Some(rel) = relative(root, entry.path()) else {
        tree.problems.push(LocalProblem {
            rel: lossy_relative(root, entry.path()),
            message: "name is not valid UTF-8; skipped (FTP paths are UTF-8)".into(),
            is_failure: true,
        });
        return;
    };
    if rel.contains(['\r', '\n']) {
        tree.problems.push(LocalProblem {
            rel,
            message: "name contains a line break, which FTP cannot carry; skipped".into(),
            is_failure: true,
        });
        return;
    }
    let file_type = entry.file_type();
    let kind = if file_type.is_dir() {
        LocalKind::Dir
    } else if file_type.is_file() {
        LocalKind::File
    } else {
        let what = if file_type.is_symlink() {
            "symbolic link"
        } else {
            "special file"
        };
        tree.problems.push(LocalProblem {
            rel,
            message: format!("{what}; skipped"),
            is_failure: false,
        });
        return;
    };
    match entry.metadata() {
        Ok(meta) => {
            let since_epoch = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .unwrap_or_default();
            let size = if kind == LocalKind::File {
                meta.len()
            } else {
                0
            };
            let entry = LocalEntry {
                kind,
                size,
                mtime: since_epoch.as_secs() as i64,
                mtime_ns: since_epoch.as_nanos() as i64,
            };
            tree.entries.insert(rel, entry);
        }
        Err(err) => tree.problems.push(LocalProblem {
            rel,
            message: format!("cannot read: {}", io_reason(&err)),
            is_failure: true,
        }),
    }
}

fn io_reason(err: &walkdir::Error) -> String {
    err.io_error()
        .map_or_else(|| err.to_string(), |e| e.to_string())
}

/// `path` relative to `root`, '/'-separated; None outside the root or when a component is not
/// UTF-8.
pub(crate) fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

fn lossy_relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_relations() {
        let scope = Scope::Paths(vec!["a/b".into(), "c".into()]);
        assert_eq!(scope.relation(""), Relation::Above);
        assert_eq!(scope.relation("a"), Relation::Above);
        assert_eq!(scope.relation("a/b"), Relation::Inside);
        assert_eq!(scope.relation("a/b/x"), Relation::Inside);
        assert_eq!(scope.relation("a/bb"), Relation::Outside);
        assert_eq!(scope.relation("c/d"), Relation::Inside);
        assert_eq!(scope.relation("d"), Relation::Outside);
        assert_eq!(Scope::Everything.relation("anything"), Relation::Inside);
    }

    fn opts(max_depth: Option<usize>, filter: &Filter) -> ScanOptions<'_> {
        ScanOptions {
            max_depth,
            filter,
            follow_symlinks: false,
        }
    }

    #[test]
    fn followed_symlinks_upload_their_target_and_loops_are_reported() {
        let dir = tree();
        std::os::unix::fs::symlink("top.txt", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("a/up")).unwrap();
        let f = Filter::default();
        let t = scan(
            dir.path(),
            ScanOptions {
                max_depth: None,
                filter: &f,
                follow_symlinks: true,
            },
        )
        .unwrap();
        assert_eq!(t.entries["link"].size, 5);
        assert!(
            t.problems
                .iter()
                .any(|p| p.rel == "a/up" && p.message.contains("loop")),
            "{:?}",
            t.problems
        );
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("top.txt"), "12345").unwrap();
        std::fs::write(dir.path().join("a/x.log"), "x").unwrap();
        std::fs::write(dir.path().join("a/b/deep.txt"), "deep").unwrap();
        dir
    }

    #[test]
    fn records_files_and_folders_with_sizes() {
        let dir = tree();
        let t = scan(dir.path(), opts(None, &Filter::default())).unwrap();
        let keys: Vec<_> = t.entries.keys().cloned().collect();
        assert_eq!(keys, ["a", "a/b", "a/b/deep.txt", "a/x.log", "top.txt"]);
        assert_eq!(t.entries["top.txt"].size, 5);
        assert_eq!(t.entries["a/b"].kind, LocalKind::Dir);
    }

    #[test]
    fn depth_limit_and_excludes_apply() {
        let dir = tree();
        let f = Filter::new(&["*.log".to_string()], &[]).unwrap();
        let t = scan(dir.path(), opts(Some(2), &f)).unwrap();
        let keys: Vec<_> = t.entries.keys().cloned().collect();
        assert_eq!(keys, ["a", "a/b", "top.txt"]);
    }

    #[test]
    fn excluded_folder_is_not_descended() {
        let dir = tree();
        let f = Filter::new(&["a/".to_string()], &[]).unwrap();
        let t = scan(dir.path(), opts(None, &f)).unwrap();
        assert_eq!(t.entries.keys().collect::<Vec<_>>(), ["top.txt"]);
    }

    #[test]
    fn a_path_scan_sees_the_path_its_subtree_and_its_ancestors_only() {
        let dir = tree();
        let paths = vec!["a/b".to_string(), "gone.txt".to_string()];
        let t = scan_paths(dir.path(), &paths, opts(None, &Filter::default())).unwrap();
        let keys: Vec<_> = t.entries.keys().cloned().collect();
        assert_eq!(keys, ["a", "a/b", "a/b/deep.txt"]);
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let err = scan(Path::new("/no/such/dir"), opts(None, &Filter::default())).unwrap_err();
        assert!(err.to_string().contains("/no/such/dir does not exist"));
    }

    #[test]
    fn symlinks_are_reported_not_followed() {
        let dir = tree();
        std::os::unix::fs::symlink("top.txt", dir.path().join("link")).unwrap();
        let t = scan(dir.path(), opts(None, &Filter::default())).unwrap();
        assert!(!t.entries.contains_key("link"));
        assert_eq!(t.problems.len(), 1);
        assert!(!t.problems[0].is_failure);
    }
}
