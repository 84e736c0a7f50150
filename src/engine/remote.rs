//! Listing the remote tree for one run, in parallel over the workers' connections: each folder
//! as soon as its parent's listing names it, only where the run needs to know (its scope, its
//! depth, what may have to be removed), within a bound on depth (memory is bounded by the
//! listings' shared budget, [`listing::MAX_HELD_TOTAL`]). A pull lists everything it may
//! download.

use std::collections::HashMap;

use super::job::{Job, JobError, Outcome};
use super::plan::{Protected, RemoteTree};
use super::pool::{Dispatcher, Report};
use super::{Run, SyncError};
use crate::direction::Direction;
use crate::ftp::listing::{self, EntryKind};
use crate::ftp::FtpError;
use crate::local::{LocalKind, LocalTree, Relation, Scope};
use crate::lock;
use crate::temp_name::{self, Leftover, RunToken};

/// The remote tree as listed.
pub(super) struct Listed {
    pub(crate) tree: RemoteTree,
    pub(crate) root_exists: bool,
    /// Temporary files of uploads, with what their names say of their writers.
    pub(crate) leftovers: Vec<(String, Leftover)>,
    /// Folders not fully listed (refused, capped, or not descended into): nothing below them
    /// may be deleted.
    pub(crate) protected: Protected,
    /// The root folder's own time, where its listing gave it (see `listing::Parsed::own_time`).
    pub(crate) root_time: Option<listing::RemoteTime>,
    /// The listed entries' share of the memory budget, held while the tree is.
    _charges: Vec<listing::Charge>,
}

/// Deepest remote folder listed: a server reporting an endlessly nested tree (or a symbolic
/// link loop listed as a folder) is not followed for ever. Far deeper than real sites go, and
/// deeper than most local file systems allow a path to be long.
const MAX_REMOTE_DEPTH: usize = 100;

impl Run<'_> {
    /// Lists the remote tree over all connections: each folder as soon as its parent's listing
    /// names it. Returns the tree and whether the root exists.
    pub(super) async fn list_remote(
        &mut self,
        pool: &mut Dispatcher,
        local: &LocalTree,
        scope: &Scope,
    ) -> Result<Listed, SyncError> {
        let mut remote = RemoteTree::new();
        let mut leftovers = Vec::new();
        let mut protected = Protected::default();
        let mut charges = Vec::new();
        let mut root_exists = true;
        let mut root_time = None;
        let pull = self.config.direction == Direction::Pull;
        let mut pending: HashMap<usize, String> = HashMap::new();
        pending.insert(pool.send_high(Job::List(String::new())), String::new());
        while !pending.is_empty() {
            let (id, result) = match pool.next().await {
                Report::Done { id, result, .. } => (id, result),
                Report::NoWorkers if self.stop.is_cancelled() => {
                    return Err(SyncError::Interrupted)
                }
                Report::NoWorkers => {
                    return Err(SyncError::Connect(FtpError::Connection {
                        operation: "listing".into(),
                        detail: "every connection to the server was lost".into(),
                    }))
                }
            };
            let Some(dir) = pending.remove(&id) else {
                continue;
            };
            let parsed = match result {
                Ok(Outcome::Listed(parsed)) => parsed,
                Ok(_) => continue,
                Err(JobError::Remote(e))
                    if dir.is_empty() && e.is_permanent() && !names_itself(&e) =>
                {
                    root_exists = false;
                    self.root_missing = true;
                    continue;
                }
                Err(JobError::Interrupted) => return Err(SyncError::Interrupted),
                Err(e) if dir.is_empty() => {
                    return Err(SyncError::ListRoot {
                        path: self.config.target.remote_path(""),
                        error: e.to_string(),
                    })
                }
                Err(e) => {
                    self.fail(
                        &dir,
                        &format!("cannot list remote folder: {e}; nothing in it is deleted"),
                    );
                    protected.insert(dir);
                    continue;
                }
            };
            if dir.is_empty() {
                root_time = parsed.own_time;
            }
            let complete = parsed.is_complete();
            let listing::Parsed {
                entries,
                errors,
                charge,
                ..
            } = parsed;
            charges.push(charge);
            if !complete {
                // An entry misread or cut short is an entry unknown: nothing there goes.
                self.reporter.notice(&format!(
                    "remote folder {:?} listed with lines that could not be read; nothing in it is deleted",
                    shown(&dir)
                ));
                protected.insert(dir.clone());
            }
            for err in errors {
                tracing::warn!(folder = %dir, "{err}; line skipped");
            }
            if dir.is_empty() && entries.is_empty() {
                // Some servers list a missing folder as empty: make sure it exists.
                root_exists = false;
            }
            for entry in entries {
                let rel = if dir.is_empty() {
                    entry.name.clone()
                } else {
                    format!("{dir}/{}", entry.name)
                };
                if !listing::is_safe_name(&entry.name) || entry.name.contains('\u{FFFD}') {
                    self.summary.skipped_remote += 1;
                    self.reporter.notice(&format!(
                        "ignoring remote entry {:?} in {:?}: unsafe or unreadable name (never followed or deleted)",
                        entry.name,
                        shown(&dir)
                    ));
                    // An entry we cannot name cannot be deleted: neither can its folder.
                    protected.insert(rel);
                    continue;
                }
                if self.backup_rel.as_ref() == Some(&rel) {
                    // ftpsync's own: never listed, uploaded into or deleted.
                    protected.insert(rel);
                    continue;
                }
                let is_dir = entry.kind == EntryKind::Dir;
                if pull && self.config.filter.is_excluded(&rel, is_dir) {
                    // Not a source: its local namesake is seen by the deletion filter only.
                    continue;
                }
                if self.config.remote_filter.is_excluded(&rel, is_dir) {
                    // Not ours to judge: nothing there is deleted, nor the folder holding it.
                    protected.insert(rel);
                    continue;
                }
                if let Some(leftover) = Leftover::of(&entry.name)
                    .filter(|_| !is_dir && !local.entries.contains_key(&rel))
                {
                    leftovers.push((rel, leftover));
                    continue;
                }
                if is_dir {
                    match self.should_descend(&rel, local, scope) {
                        Descend::Yes => {
                            pending.insert(pool.send_high(Job::List(rel.clone())), rel.clone());
                        }
                        Descend::TooDeep => {
                            self.fail(
                                &rel,
                                &format!("remote tree deeper than {MAX_REMOTE_DEPTH} levels (a symbolic link loop listed as a folder?); not listed further, nothing in it is deleted"),
                            );
                            protected.insert(rel.clone());
                        }
                        Descend::NotNeeded => {
                            protected.insert(rel.clone());
                        }
                    }
                }
                // Siblings listed along the way are outside a scoped cycle: not ours to judge.
                if scope.relation(&rel) != Relation::Outside {
                    remote.insert(rel, entry);
                }
            }
        }
        Ok(Listed {
            tree: remote,
            root_exists,
            leftovers,
            protected,
            root_time,
            _charges: charges,
        })
    }

    /// The temporary files that no live upload can own (see [`Leftover::is_removable`]):
    /// those of this machine's cycles that are over, old ones, and those of versions without
    /// tokens. Another run's may be in the middle of its upload: left alone, and said so.
    pub(super) fn removable_leftovers(&mut self, found: Vec<(String, Leftover)>) -> Vec<String> {
        let now = temp_name::unix_now();
        let state_dir = self.config.state_dir.as_deref();
        let is_over = |token: &RunToken| state_dir.is_some_and(|d| lock::cycle_is_over(d, token));
        let (removable, kept): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|(_, leftover)| leftover.is_removable(is_over, now));
        if !kept.is_empty() {
            self.reporter.notice(&format!(
                "leaving {} temporary file(s) of another ftpsync run alone (it may still be uploading them; they go once two days old), e.g. {:?}",
                kept.len(),
                kept[0].0
            ));
        }
        if !removable.is_empty() {
            let verb = if self.config.dry_run {
                "would remove"
            } else {
                "removing"
            };
            self.reporter.notice(&format!(
                "{verb} {} temporary file(s) left by an interrupted run",
                removable.len()
            ));
        }
        removable.into_iter().map(|(rel, _)| rel).collect()
    }

    /// Whether the remote folder `rel` must be listed: it is mirrored, or its content may have
    /// to be removed (type change, `--delete`), and it is within the depth limits.
    fn should_descend(&self, rel: &str, local: &LocalTree, scope: &Scope) -> Descend {
        if scope.relation(rel) == Relation::Outside {
            return Descend::NotNeeded;
        }
        let depth = rel.split('/').count();
        if self.config.max_depth.is_some_and(|max| depth >= max) {
            return Descend::NotNeeded;
        }
        let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
        // Below a remote folder that is being replaced by a file, everything must be known.
        let needed = local.entries.contains_key(rel)
            || self.config.delete
            || !is_local_dir(local, parent)
            || self.config.direction == Direction::Pull;
        match (needed, depth >= MAX_REMOTE_DEPTH) {
            (false, _) => Descend::NotNeeded,
            (true, true) => Descend::TooDeep,
            (true, false) => Descend::Yes,
        }
    }
}

/// Whether a remote folder gets listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Descend {
    Yes,
    /// Not needed by this run (outside its scope or depth, or nothing in it can change):
    /// unlisted, so protected from deletion.
    NotNeeded,
    /// Beyond [`MAX_REMOTE_DEPTH`].
    TooDeep,
}

/// A listing that named the listed path itself (a file, an unreadable folder): the root is
/// there, and the error says what it is.
fn names_itself(e: &FtpError) -> bool {
    matches!(e, FtpError::NotAFolder { .. } | FtpError::Unreadable { .. })
}

/// A folder as messages name it ("." for the root).
fn shown(dir: &str) -> &str {
    if dir.is_empty() {
        "."
    } else {
        dir
    }
}

/// Whether `rel` is a local folder (the root always is).
fn is_local_dir(local: &LocalTree, rel: &str) -> bool {
    rel.is_empty()
        || local
            .entries
            .get(rel)
            .is_some_and(|e| e.kind == LocalKind::Dir)
}
