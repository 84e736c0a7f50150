//! The planner: compares the local tree with the remote listing and decides, for every path,
//! what to do: create a folder, upload, delete, or nothing. Pure logic, no I/O. Each action names
//! the actions that must finish before it may start; the scheduler enforces that order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::ftp::listing::{EntryKind, RemoteEntry, RemoteTime, TimePrecision};
use crate::local::filter::Filter;
use crate::local::{is_below, LocalEntry, LocalKind, LocalTree};
use crate::report::{escape_controls, human_bytes};
use crate::state::Record;

mod content;
pub(crate) use content::{ContentCheck, Verdict};

/// One change to make on the server. Paths are '/'-separated and relative to the sync root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Create the sync root and its missing parents.
    MakeRoot,
    Mkdir(String),
    Upload {
        rel: String,
        size: u64,
        mtime: i64,
    },
    /// Delete a file (or a symlink or other non-folder entry).
    DeleteFile(String),
    /// Remove a folder that has been emptied.
    RemoveDir(String),
    /// Remove a temporary file left by an interrupted atomic upload (not a user file).
    Cleanup(String),
}

impl Op {
    /// The path the operation is about ("" for the root).
    pub(crate) fn rel(&self) -> &str {
        match self {
            Op::MakeRoot => "",
            Op::Mkdir(rel) | Op::DeleteFile(rel) | Op::RemoveDir(rel) | Op::Cleanup(rel) => rel,
            Op::Upload { rel, .. } => rel,
        }
    }
}

/// When an action may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Folder creation, uploads, and the deletions that make room for them (type changes).
    Transfer,
    /// Removal of what no longer exists locally (`--delete`): only after every transfer succeeded.
    Delete,
}

/// An operation and the actions (indices into [`Plan::actions`]) that must succeed first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Action {
    pub(crate) op: Op,
    pub(crate) after: Vec<usize>,
    pub(crate) phase: Phase,
}

/// The remote side as listed: entries keyed by path relative to the root.
pub(crate) type RemoteTree = BTreeMap<String, RemoteEntry>;

/// What the planner needs to know besides the two trees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanOptions<'a> {
    /// Whether the sync root exists on the server.
    pub(crate) root_exists: bool,
    /// `--delete`.
    pub(crate) delete: bool,
    /// Excluded remote paths are never deleted.
    pub(crate) filter: &'a Filter,
    /// What earlier runs uploaded to this target.
    pub(crate) record: &'a Record,
    /// Temporary files of interrupted uploads found on the server, to remove. (This cycle's
    /// own temporary names carry a new token: none of them is among these.)
    pub(crate) leftovers: &'a [String],
    /// Remote paths nothing may be deleted at or below: what the local scan could not read,
    /// and remote folders that were not fully listed.
    pub(crate) protected: &'a Protected,
    /// False when the deletions would exceed `--max-delete`: the plan then deletes nothing,
    /// and what cannot be mirrored without a deletion (a type change) is blocked.
    pub(crate) allow_deletions: bool,
    /// `--checksum`: files on both sides are compared by content (None: by time).
    pub(crate) content: Option<ContentCheck<'a>>,
}

/// Paths (relative to the root) that nothing may be deleted at or below, because the run does
/// not know what lies there: a local entry the scan could not read (so its absence says
/// nothing), or a remote folder whose listing failed, was capped, or was not made. `""`
/// protects everything.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Protected {
    paths: BTreeSet<String>,
}

impl Protected {
    /// Protects `rel` and everything below it.
    pub(crate) fn insert(&mut self, rel: impl Into<String>) {
        self.paths.insert(rel.into());
    }

    /// Whether `rel` is protected, itself or through a folder above it.
    pub(crate) fn covers(&self, rel: &str) -> bool {
        self.paths.contains(rel)
            || self.paths.contains("")
            || ancestors(rel).any(|a| self.paths.contains(a))
    }

    /// Whether `dir` or anything below it is protected.
    pub(crate) fn touches(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.covers(dir)
            || self
                .paths
                .range(prefix.clone()..)
                .next()
                .is_some_and(|p| p.starts_with(&prefix))
    }
}

/// The whole plan of one sync.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) actions: Vec<Action>,
    /// Files already up to date.
    pub(crate) unchanged: Vec<String>,
    /// Paths that cannot be mirrored as asked, with the reason (counted as failures).
    pub(crate) blocked: Vec<(String, String)>,
    /// `--checksum`: files uploaded again because the server no longer holds what ftpsync put
    /// there (changed or removed on the server).
    pub(crate) drift: Vec<String>,
    /// `--checksum`: files whose comparison was made by hash.
    pub(crate) compared_by_hash: u64,
    /// Remote entries `--delete` keeps because they differ only in case from a local entry
    /// (remote path, local path): on a server that ignores case they are the same file, and
    /// deleting one would delete what was just uploaded.
    pub(crate) kept_case_twins: Vec<(String, String)>,
}

impl Plan {
    /// The files this plan uploads (path relative to the root, size).
    pub(crate) fn uploads(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.actions.iter().filter_map(|a| match &a.op {
            Op::Upload { rel, size, .. } => Some((rel.clone(), *size)),
            _ => None,
        })
    }

    /// Remote entries this plan deletes (type changes included; leftover temporary files,
    /// which are not the user's, are not counted).
    pub(crate) fn deletions(&self) -> u64 {
        self.actions
            .iter()
            .filter(|a| matches!(a.op, Op::DeleteFile(_) | Op::RemoveDir(_)))
            .count() as u64
    }
}

/// Decides what to do. `remote` holds every listed remote entry under the root.
pub(crate) fn plan(local: &LocalTree, remote: &RemoteTree, opts: PlanOptions<'_>) -> Plan {
    let mut p = Planner {
        plan: Plan::default(),
        remote,
        opts,
        created: BTreeMap::new(),
        replaced: HashSet::new(),
        blocked_dirs: HashSet::new(),
    };
    if !opts.root_exists {
        let i = p.push(Op::MakeRoot, vec![], Phase::Transfer);
        p.created.insert(String::new(), i);
    }
    for leftover in opts.leftovers {
        p.push(Op::Cleanup(leftover.clone()), vec![], Phase::Transfer);
    }
    for (rel, entry) in &local.entries {
        p.local_entry(rel, entry);
    }
    if opts.delete && opts.allow_deletions {
        p.extraneous(local);
    }
    p.plan
}

struct Planner<'a> {
    plan: Plan,
    remote: &'a RemoteTree,
    opts: PlanOptions<'a>,
    /// Folders this plan creates, with the action that creates them.
    created: BTreeMap<String, usize>,
    /// Remote folders dealt with as a whole because a local file takes their place: `--delete`
    /// must not plan their content a second time.
    replaced: HashSet<String>,
    /// Local folders that cannot be created (a remote entry is in the way and may not go):
    /// nothing below them is planned.
    blocked_dirs: HashSet<String>,
}

impl Planner<'_> {
    fn push(&mut self, op: Op, after: Vec<usize>, phase: Phase) -> usize {
        self.plan.actions.push(Action { op, after, phase });
        self.plan.actions.len() - 1
    }

    /// The action creating the parent folder of `rel`, if this plan creates it.
    fn parent_dep(&self, rel: &str) -> Vec<usize> {
        let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
        self.created.get(parent).copied().into_iter().collect()
    }

    fn block(&mut self, rel: &str, why: impl Into<String>) {
        self.plan.blocked.push((rel.into(), why.into()));
    }

    fn local_entry(&mut self, rel: &str, local: &LocalEntry) {
        if ancestors(rel).any(|a| self.blocked_dirs.contains(a)) {
            return;
        }
        let mut after = self.parent_dep(rel);
        let remote = self.remote.get(rel);
        match (local.kind, remote.map(|r| r.kind)) {
            (LocalKind::Dir, Some(EntryKind::Dir)) => {}
            (LocalKind::Dir, other) => {
                if other.is_some() {
                    if self.opts.protected.covers(rel) {
                        // A local folder that could not be read replaces nothing.
                        self.blocked_dirs.insert(rel.into());
                        return self.block(rel, NOT_REPLACED_UNREADABLE);
                    }
                    if !self.opts.allow_deletions {
                        self.blocked_dirs.insert(rel.into());
                        return self.block(rel, NOT_REPLACED_MAX_DELETE);
                    }
                    after.push(self.push(Op::DeleteFile(rel.into()), vec![], Phase::Transfer));
                }
                let i = self.push(Op::Mkdir(rel.into()), after, Phase::Transfer);
                self.created.insert(rel.into(), i);
            }
            (LocalKind::File, Some(EntryKind::File)) => {
                let remote = remote.expect("matched Some");
                let verdict = match self.opts.content {
                    Some(content) => content.judge(rel, local, remote),
                    None if needs_upload(rel, local, remote, self.opts.record) => {
                        Verdict::Changed { by_hash: false }
                    }
                    None => Verdict::Unchanged { by_hash: false },
                };
                match verdict {
                    Verdict::Unchanged { by_hash } => {
                        self.plan.compared_by_hash += u64::from(by_hash);
                        self.plan.unchanged.push(rel.into());
                    }
                    Verdict::Changed { by_hash } => {
                        self.plan.compared_by_hash += u64::from(by_hash);
                        self.upload(rel, local, after);
                    }
                    Verdict::Drift => {
                        self.plan.compared_by_hash += 1;
                        self.plan.drift.push(rel.into());
                        self.upload(rel, local, after);
                    }
                }
            }
            (LocalKind::File, Some(EntryKind::Dir)) => self.replace_dir(rel, local, after),
            (LocalKind::File, Some(_)) => {
                if self.opts.protected.covers(rel) {
                    return self.block(rel, NOT_REPLACED_UNREADABLE);
                }
                if !self.opts.allow_deletions {
                    return self.block(rel, NOT_REPLACED_MAX_DELETE);
                }
                after.push(self.push(Op::DeleteFile(rel.into()), vec![], Phase::Transfer));
                self.upload(rel, local, after);
            }
            (LocalKind::File, None) => {
                if self.opts.content.is_some_and(|c| c.recorded(rel)) {
                    self.plan.drift.push(rel.into());
                }
                self.upload(rel, local, after)
            }
        }
    }

    /// A local file where the server has a folder. The folder goes only when nothing in it
    /// would be lost without the user having asked: everything in it was uploaded by ftpsync
    /// (the record knows it), or `--delete` says that what is not local goes. Never when part
    /// of it is unknown (not fully listed, or unreadable locally).
    fn replace_dir(&mut self, rel: &str, local: &LocalEntry, mut after: Vec<usize>) {
        self.replaced.insert(rel.into());
        if self.opts.protected.touches(rel) {
            return self.block(
                rel,
                "cannot replace the remote folder with a file: part of it is excluded, could not be listed, or could not be read; nothing in it was deleted",
            );
        }
        if !self.opts.allow_deletions {
            return self.block(rel, NOT_REPLACED_MAX_DELETE);
        }
        if !self.opts.delete {
            let unknown = self.unknown_entries(rel);
            if unknown > 0 {
                let entries = if unknown == 1 { "entry" } else { "entries" };
                return self.block(
                    rel,
                    format!("conflict: a local file replaces a remote folder that has {unknown} {entries} not in the local tree; use --delete to replace it"),
                );
            }
        }
        match self.remove_tree(rel, Phase::Transfer) {
            Some(i) => {
                after.push(i);
                self.upload(rel, local, after);
            }
            None => self.block(
                rel,
                "cannot replace the remote folder with a file: it holds excluded entries",
            ),
        }
    }

    /// How many entries below the remote folder `rel` are not known to be ftpsync's own: a
    /// file is when the record says ftpsync uploaded it and the listing still shows that
    /// upload (its size, and the time ftpsync set); a folder is when a known file lies in it.
    fn unknown_entries(&self, rel: &str) -> usize {
        let known_files: Vec<&str> = self
            .children(rel)
            .filter(|(child, kind)| *kind == EntryKind::File && self.is_ours(child))
            .map(|(child, _)| child)
            .collect();
        self.children(rel)
            .filter(|(child, kind)| match kind {
                EntryKind::File => !known_files.contains(child),
                EntryKind::Dir => !known_files.iter().any(|f| is_below(f, child)),
                _ => true,
            })
            .count()
    }

    /// Whether the remote file `rel` is as ftpsync uploaded it: recorded, same size, and the
    /// listed time is the one ftpsync set, to the second.
    /// On a server that cannot set times nothing is known this way: someone else's same-size
    /// rewrite would look the same.
    fn is_ours(&self, rel: &str) -> bool {
        let (Some(seen), Some(remote)) = (self.opts.record.get(rel), self.remote.get(rel)) else {
            return false;
        };
        let seen_secs = seen.mtime_ns.div_euclid(1_000_000_000);
        // To the second: a minute-precise listing (LIST, STAT) cannot tell ftpsync's upload from
        // a same-size rewrite within that minute.
        remote.size == seen.size
            && remote
                .mtime
                .is_some_and(|t| t.precision == TimePrecision::Second && t.unix == seen_secs)
    }

    /// The remote entries below the folder `rel`, in path order.
    fn children<'s>(&'s self, rel: &str) -> impl Iterator<Item = (&'s str, EntryKind)> + 's {
        let prefix = format!("{rel}/");
        self.remote
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(k, e)| (k.as_str(), e.kind))
    }

    fn upload(&mut self, rel: &str, local: &LocalEntry, after: Vec<usize>) {
        let op = Op::Upload {
            rel: rel.into(),
            size: local.size,
            mtime: local.mtime,
        };
        self.push(op, after, Phase::Transfer);
    }

    /// Plans the removal of the remote folder `rel` and everything listed under it, deepest
    /// first. Returns the action removing `rel` itself, or None when an excluded entry inside
    /// must stay (its non-excluded content is still removed).
    fn remove_tree(&mut self, rel: &str, phase: Phase) -> Option<usize> {
        let children: Vec<(String, EntryKind)> = self
            .children(rel)
            .map(|(k, kind)| (k.to_string(), kind))
            .collect();
        // Excluded and protected entries stay, and so does everything inside such a folder.
        let mut kept: Vec<&str> = Vec::new();
        let keep: Vec<bool> = children
            .iter()
            .map(|(child, kind)| {
                let inside_kept = kept.iter().any(|k| is_below(child, k));
                let excluded = inside_kept
                    || self.opts.protected.covers(child)
                    || self.opts.filter.is_excluded(child, *kind == EntryKind::Dir);
                if excluded && *kind == EntryKind::Dir {
                    kept.push(child);
                }
                excluded
            })
            .collect();
        // Deepest first, so each folder's children are planned before the folder.
        let mut removal: BTreeMap<String, Option<usize>> = BTreeMap::new();
        for ((child, kind), keep) in children.iter().zip(keep).rev() {
            let removed = if keep {
                None
            } else if *kind == EntryKind::Dir {
                self.remove_emptied_dir(child, &removal, phase)
            } else {
                Some(self.push(Op::DeleteFile(child.clone()), vec![], phase))
            };
            removal.insert(child.clone(), removed);
        }
        self.remove_emptied_dir(rel, &removal, phase)
    }

    /// RMD of `dir` after the removal of each of its direct children, or None if one must stay.
    fn remove_emptied_dir(
        &mut self,
        dir: &str,
        removal: &BTreeMap<String, Option<usize>>,
        phase: Phase,
    ) -> Option<usize> {
        // Something below it is unknown: the folder is not known to be emptied.
        if self.opts.protected.touches(dir) {
            return None;
        }
        let prefix = format!("{dir}/");
        let mut after = Vec::new();
        for (child, removed) in removal.range(prefix.clone()..) {
            if !child.starts_with(&prefix) {
                break;
            }
            if child[prefix.len()..].contains('/') {
                continue;
            }
            after.push((*removed)?);
        }
        Some(self.push(Op::RemoveDir(dir.into()), after, phase))
    }

    /// `--delete`: remote entries with no local counterpart, outermost first.
    fn extraneous(&mut self, local: &LocalTree) {
        // Folders already dealt with as a whole: removed, replaced by a file, or excluded.
        let mut removed_dirs: HashSet<String> = self.replaced.clone();
        let remote: Vec<(String, EntryKind)> = self
            .remote
            .iter()
            .map(|(k, e)| (k.clone(), e.kind))
            .collect();
        let folded: HashMap<String, &String> = local
            .entries
            .keys()
            .map(|k| (k.to_lowercase(), k))
            .collect();
        for (rel, kind) in remote {
            if ancestors(&rel).any(|a| removed_dirs.contains(a)) {
                continue;
            }
            let is_dir = kind == EntryKind::Dir;
            if self.opts.protected.covers(&rel) {
                continue;
            }
            if self.opts.filter.is_excluded(&rel, is_dir) {
                // Nothing inside an excluded folder is touched either.
                if is_dir {
                    removed_dirs.insert(rel);
                }
                continue;
            }
            if local.entries.contains_key(&rel) {
                continue;
            }
            if let Some(twin) = folded.get(&rel.to_lowercase()) {
                self.plan
                    .kept_case_twins
                    .push((rel.clone(), twin.to_string()));
                if is_dir {
                    removed_dirs.insert(rel);
                }
                continue;
            }
            if is_dir {
                self.remove_tree(&rel, Phase::Delete);
                removed_dirs.insert(rel);
            } else {
                self.push(Op::DeleteFile(rel), vec![], Phase::Delete);
            }
        }
    }
}

const NOT_REPLACED_UNREADABLE: &str =
    "not replaced: the local entry could not be read, so the remote entry in its way stays";

const NOT_REPLACED_MAX_DELETE: &str =
    "not replaced: the remote entry in its way would be deleted, and the run deletes nothing (--max-delete)";

/// The folders above `rel`, innermost first ("a/b/c" gives "a/b", "a").
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    rel.rmatch_indices('/').map(move |(i, _)| &rel[..i])
}

/// `+ dir/`, `> file (12.3 KiB)`, `- file`, `- dir/`; escaped for the terminal, since names may
/// come from the server or hold a newline.
pub(crate) fn change_line(op: &Op) -> String {
    let line = match op {
        Op::MakeRoot => "+ ./".to_string(),
        Op::Mkdir(rel) => format!("+ {rel}/"),
        Op::Upload { rel, size, .. } => format!("> {rel} ({})", human_bytes(*size)),
        Op::DeleteFile(rel) => format!("- {rel}"),
        Op::RemoveDir(rel) => format!("- {rel}/"),
        Op::Cleanup(rel) => format!("- {rel} (leftover of an interrupted upload)"),
    };
    escape_controls(&line).into_owned()
}

/// Whether a file present on both sides must be sent again.
///
/// The record of earlier uploads is the strongest evidence (nanosecond local times); without it
/// the listing's time is compared within its precision: a remote time that covers the local one
/// means the server's time was set by us, a remote time after it means the server stamped the
/// upload time (servers that cannot set times), and a local time after the covered range means
/// the file changed.
pub(crate) fn needs_upload(
    rel: &str,
    local: &LocalEntry,
    remote: &RemoteEntry,
    record: &Record,
) -> bool {
    if remote.size != local.size {
        return true;
    }
    let covers = |t: RemoteTime| (t.unix..t.unix + t.precision.seconds()).contains(&local.mtime);
    if let Some(seen) = record.get(rel) {
        // Where ftpsync set the time, another time means someone changed the file on the
        // server since (a same-size rewrite): mirror it again.
        let changed_there = seen.time_set && remote.mtime.is_some_and(|t| !covers(t));
        return !seen.matches(local) || changed_there;
    }
    match remote.mtime {
        Some(t) => local.mtime >= t.unix + t.precision.seconds(),
        None => true,
    }
}

#[cfg(test)]
mod tests;
