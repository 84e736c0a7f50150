//! `--gitignore`: the `.gitignore` files inside the local tree, honoured as git does: each one
//! speaks for its own folder and below, a deeper one over a shallower one, the last matching
//! line of a file deciding (`!pattern` keeps). `.git/` itself is always left out. The files are
//! read once each, when a path below their folder is first asked about (the local scan walks
//! top-down; the remote side asks about the same paths), through the `ignore` crate's matcher.
//! An unreadable or invalid `.gitignore` is skipped with a warning, as git skips what it cannot
//! read.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Largest `.gitignore` read; a larger one is skipped.
const MAX_GITIGNORE_BYTES: u64 = 1 << 20;

/// The `.gitignore` files of one local tree.
#[derive(Debug, Clone)]
pub(crate) struct NestedGitignore {
    root: PathBuf,
    /// Folder (relative, '/'-separated, "" for the root) -> its `.gitignore`, None if it has
    /// none that could be read.
    loaded: Arc<Mutex<HashMap<String, Option<Arc<Gitignore>>>>>,
}

/// What the `.gitignore` files say of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ignored,
    /// A `!pattern` keeps it.
    Kept,
    /// No line speaks of it.
    Silent,
}

impl NestedGitignore {
    pub(crate) fn new(root: PathBuf) -> NestedGitignore {
        NestedGitignore {
            root,
            loaded: Arc::default(),
        }
    }

    /// What the `.gitignore` files of `rel`'s folders say of it, the deepest first.
    pub(crate) fn verdict(&self, rel: &str, is_dir: bool) -> Verdict {
        if rel == ".git" || rel.ends_with("/.git") {
            return Verdict::Ignored;
        }
        let folders: Vec<&str> = std::iter::once("")
            .chain(rel.match_indices('/').map(|(i, _)| &rel[..i]))
            .collect();
        for folder in folders.into_iter().rev() {
            let Some(matcher) = self.matcher(folder) else {
                continue;
            };
            let inside = if folder.is_empty() {
                rel
            } else {
                &rel[folder.len() + 1..]
            };
            let found = matcher.matched(inside, is_dir);
            if found.is_ignore() {
                return Verdict::Ignored;
            }
            if found.is_whitelist() {
                return Verdict::Kept;
            }
        }
        Verdict::Silent
    }

    fn matcher(&self, folder: &str) -> Option<Arc<Gitignore>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded
            .entry(folder.to_string())
            .or_insert_with(|| self.load(folder).map(Arc::new))
            .clone()
    }

    fn load(&self, folder: &str) -> Option<Gitignore> {
        let dir = self.root.join(folder);
        let path = dir.join(".gitignore");
        let size = std::fs::metadata(&path).ok().filter(|m| m.is_file())?.len();
        if size > MAX_GITIGNORE_BYTES {
            tracing::warn!("{} is larger than 1 MiB; not read", path.display());
            return None;
        }
        let mut builder = GitignoreBuilder::new(&dir);
        if let Some(e) = builder.add(&path) {
            tracing::warn!("{}: {e}; its other lines still count", path.display());
        }
        match builder.build() {
            Ok(matcher) => Some(matcher),
            Err(e) => {
                tracing::warn!("{}: {e}; not used", path.display());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_gitignore_speaks_for_its_folder_the_deeper_one_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "*.log\n/build/\n").unwrap();
        std::fs::create_dir_all(dir.path().join("app/build")).unwrap();
        std::fs::write(dir.path().join("app/.gitignore"), "!keep.log\nsecret.txt\n").unwrap();
        let g = NestedGitignore::new(dir.path().to_path_buf());
        assert_eq!(g.verdict("a.log", false), Verdict::Ignored);
        assert_eq!(g.verdict("app/x.log", false), Verdict::Ignored);
        assert_eq!(g.verdict("app/keep.log", false), Verdict::Kept);
        assert_eq!(g.verdict("app/secret.txt", false), Verdict::Ignored);
        assert_eq!(
            g.verdict("secret.txt", false),
            Verdict::Silent,
            "only below app/"
        );
        assert_eq!(g.verdict("build", true), Verdict::Ignored);
        assert_eq!(
            g.verdict("app/build", true),
            Verdict::Silent,
            "anchored at the root"
        );
        assert_eq!(g.verdict(".git", true), Verdict::Ignored);
        assert_eq!(g.verdict("page.html", false), Verdict::Silent);
    }
}
