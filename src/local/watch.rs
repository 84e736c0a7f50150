//! File-system events for `--watch`: an inotify watcher (notify) on the local tree, turned into
//! batches of changed paths once the tree has been quiet for the debounce time, so a burst of
//! writes gives one sync cycle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{relative, Scope};

/// More changed paths than this in one batch are cheaper to handle as a full rescan.
const MAX_SCOPED_PATHS: usize = 10_000;

/// However busy the tree, a batch is handed over after this long, so a folder that is written
/// to without pause is still mirrored.
const MAX_BATCH_WAIT: Duration = Duration::from_secs(30);

/// While the watched folder is gone, how often to look whether it is back: the only timer of a
/// watch, and only while there is nothing to watch.
const ROOT_POLL: Duration = Duration::from_secs(1);

/// Watches a folder; yields what changed. Survives the folder being removed (or moved away)
/// and created again: the watch is armed again on the new folder.
pub(crate) struct ChangeWatcher {
    /// The folder as given.
    path: PathBuf,
    /// Its canonical form, to make event paths relative.
    root: PathBuf,
    /// Which folder is watched (device and inode), to notice it being replaced.
    watched: Option<(u64, u64)>,
    events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl ChangeWatcher {
    /// Starts watching `root` and everything below it.
    pub(crate) fn start(root: &Path) -> notify::Result<ChangeWatcher> {
        let (_, events) = mpsc::unbounded_channel();
        let mut watcher = ChangeWatcher {
            path: root.to_owned(),
            root: root.to_owned(),
            watched: None,
            events,
            _watcher: None,
        };
        watcher.arm()?;
        Ok(watcher)
    }

    /// (Re)starts the watch on the folder now at the path.
    fn arm(&mut self) -> notify::Result<()> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })?;
        watcher.watch(&self.path, RecursiveMode::Recursive)?;
        self.root = self
            .path
            .canonicalize()
            .unwrap_or_else(|_| self.path.clone());
        self.watched = folder_id(&self.path);
        self.events = events;
        self._watcher = Some(watcher);
        Ok(())
    }

    /// Whether the folder at the path is the one being watched. (A folder made again after the
    /// watched one was removed can get the same inode number: the watch is dropped as soon as
    /// the removal is seen, see [`ChangeWatcher::disarm`].)
    fn is_armed(&self) -> bool {
        self._watcher.is_some() && self.watched.is_some() && folder_id(&self.path) == self.watched
    }

    /// Drops the watch: the watched folder itself was removed or moved away. The next call
    /// waits for a folder at the path and watches it.
    fn disarm(&mut self) {
        self._watcher = None;
        self.watched = None;
    }

    /// Whether `event` removes or moves the watched folder itself.
    fn removes_root(&self, event: &notify::Result<notify::Event>) -> bool {
        let Ok(event) = event else { return false };
        let gone = matches!(
            event.kind,
            notify::EventKind::Remove(_)
                | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
        );
        gone && event
            .paths
            .iter()
            .any(|p| *p == self.path || *p == self.root)
    }

    /// Waits for the next change, then for `debounce` of quiet, and returns what changed.
    /// When the folder was replaced, waits until it is back, arms the watch again and asks
    /// for a full cycle. None when the watcher stopped.
    pub(crate) async fn next_batch(&mut self, debounce: Duration) -> Option<Scope> {
        if !self.is_armed() {
            let was_watching = self._watcher.take().is_some();
            self.watched = None;
            if was_watching && folder_id(&self.path).is_none() {
                // A cycle now says the folder is gone (and, without it, does nothing).
                return Some(Scope::Everything);
            }
            while folder_id(&self.path).is_none() {
                tokio::time::sleep(ROOT_POLL).await;
            }
            if let Err(e) = self.arm() {
                tracing::warn!(error = %e, "cannot watch the local folder again; retrying");
                tokio::time::sleep(ROOT_POLL).await;
            }
            tracing::info!("the local folder was replaced; watching the new one");
            return Some(Scope::Everything);
        }
        let mut batch = Batch::default();
        let mut root_gone = false;
        loop {
            let event = self.events.recv().await?;
            root_gone |= self.removes_root(&event);
            if batch.add(&self.root, event) {
                break;
            }
        }
        let deadline = tokio::time::Instant::now() + MAX_BATCH_WAIT;
        // Only changes restart the quiet time: reads (ours, or anyone's) do not.
        let mut quiet_until = tokio::time::Instant::now() + debounce;
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => {
                        root_gone |= self.removes_root(&event);
                        if batch.add(&self.root, event) {
                            quiet_until = tokio::time::Instant::now() + debounce;
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(quiet_until.min(deadline)) => break,
            }
        }
        if root_gone {
            self.disarm();
        }
        Some(batch.into_scope())
    }
}

/// Device and inode of the folder at `path`, if one is there.
fn folder_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// Changed paths collected from events.
#[derive(Debug, Default)]
struct Batch {
    paths: BTreeSet<String>,
    everything: bool,
}

impl Batch {
    /// Adds what `event` says changed; false when it changed nothing (a read).
    fn add(&mut self, root: &Path, event: notify::Result<notify::Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "file watching reported an error; rescanning everything");
                self.everything = true;
                return true;
            }
        };
        // Reading a file (our own uploads do) changes nothing.
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return false;
        }
        if event.need_rescan() {
            self.everything = true;
        }
        for path in &event.paths {
            match relative(root, path) {
                Some(rel) if !rel.is_empty() => {
                    self.paths.insert(rel);
                }
                _ => self.everything = true,
            }
        }
        true
    }

    fn into_scope(self) -> Scope {
        if self.everything || self.paths.len() > MAX_SCOPED_PATHS {
            return Scope::Everything;
        }
        Scope::Paths(minimal(self.paths))
    }
}

/// The paths without those below another one of them (sorted input keeps a folder before its
/// content).
fn minimal(paths: BTreeSet<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for path in paths {
        let covered = path.rmatch_indices('/').any(|(i, _)| {
            kept.binary_search_by(|k| k.as_str().cmp(&path[..i]))
                .is_ok()
        });
        if !covered {
            kept.push(path);
        }
    }
    kept.sort();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_collapse_into_their_folder() {
        let paths: BTreeSet<String> = ["a", "a/b", "a/b/c", "a b", "c/d", "c/e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(minimal(paths), ["a", "a b", "c/d", "c/e"]);
    }

    #[test]
    fn events_outside_the_tree_or_on_its_root_mean_a_full_rescan() {
        let mut batch = Batch::default();
        let root = Path::new("/data/site");
        let event = notify::Event::new(notify::EventKind::Any).add_path(root.join("x/y.txt"));
        batch.add(root, Ok(event));
        assert!(!batch.everything);
        let read = notify::EventKind::Access(notify::event::AccessKind::Any);
        let before = batch.paths.len();
        batch.add(root, Ok(notify::Event::new(read).add_path(root.join("z"))));
        assert_eq!(batch.paths.len(), before, "reading a file is no change");
        batch.add(
            root,
            Ok(notify::Event::new(notify::EventKind::Any).add_path(root.to_path_buf())),
        );
        assert!(batch.everything);
        assert_eq!(batch.into_scope(), Scope::Everything);
    }
}
