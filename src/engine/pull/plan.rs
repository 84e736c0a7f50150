//! The pull planner: compares the remote listing (the source) with the local tree (the
//! destination) and decides, for every path, what to do locally: create a folder, download a
//! file, remove what is in the way or (with `--delete`) what the server does not have, and give
//! the folders their remote times. Pure logic, no I/O; the order is the plan's (see
//! [`PullPlan`]).

use std::collections::{BTreeMap, HashSet};

use crate::engine::plan::{Protected, RemoteTree};
use crate::ftp::listing::{EntryKind, RemoteEntry, TimePrecision};
use crate::local::{is_below, LocalEntry, LocalKind, LocalTree};

/// One file to download (paths '/'-separated, relative to the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Download {
    pub(crate) rel: String,
    /// The size the listing gave: a download that ends with another size is not put in place.
    pub(crate) size: u64,
    /// The listed modification time (Unix seconds), given to the local file.
    pub(crate) mtime: Option<i64>,
    /// The listed time is known to the second (MLSD): a temporary file named for this size
    /// and time is the beginning of this very version, and may be resumed. A LIST time (per
    /// minute) cannot tell two versions of one size apart: such a download starts afresh.
    pub(crate) exact_time: bool,
}

/// What a pull does, in this order: remove the local entries in the way of what comes
/// ([`PullPlan::replace`], deepest first), create the folders (parents first), download the
/// files (largest first), and only once all of that succeeded remove what the server does not
/// have ([`PullPlan::delete`], deepest first); last, give the folders their remote times
/// ([`PullPlan::folder_times`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PullPlan {
    pub(crate) replace: Vec<(String, LocalKind)>,
    pub(crate) mkdirs: Vec<String>,
    pub(crate) downloads: Vec<Download>,
    pub(crate) delete: Vec<(String, LocalKind)>,
    /// Files already up to date.
    pub(crate) unchanged: Vec<String>,
    /// `--checksum`: files of the same size on both sides, whose hashes decide (a download when
    /// they differ, unchanged otherwise).
    pub(crate) verify: Vec<Download>,
    /// Paths that cannot be mirrored as asked, with the reason (counted as failures).
    pub(crate) blocked: Vec<(String, String)>,
    /// Local paths `--delete` leaves alone because a remote path differs from them only in
    /// case: on a case-insensitive disk they are the remote one's local file.
    pub(crate) kept_for_case: Vec<String>,
    /// The remote folders' times (Unix seconds), given to their local folders once nothing
    /// changes what they hold any more, deepest first: every mirrored folder whose listing
    /// gave a time, but none blocked or protected (left alone).
    pub(crate) folder_times: Vec<(String, i64)>,
}

impl PullPlan {
    /// Local entries this plan removes (type changes included).
    pub(crate) fn deletions(&self) -> u64 {
        (self.replace.len() + self.delete.len()) as u64
    }
}

/// What the planner needs besides the two trees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PullOptions<'a> {
    /// `--delete`.
    pub(crate) delete: bool,
    /// Local paths nothing may be removed at or below: remote folders not fully listed,
    /// remote entries skipped, local entries that could not be read.
    pub(crate) protected: &'a Protected,
    /// False when the deletions would exceed `--max-delete`: nothing is removed, and what
    /// cannot be mirrored without a removal is blocked.
    pub(crate) allow_deletions: bool,
    /// `--checksum`: a file of the same size on both sides goes to [`PullPlan::verify`]
    /// whatever the times say.
    pub(crate) checksum: bool,
}

/// Whether the remote file must be downloaded over the local one: another size, or a remote
/// time after the local one beyond the listing's precision (the listed time is the start of
/// the interval the true time lies in). Without a remote time, always.
pub(crate) fn needs_download(local: &LocalEntry, remote: &RemoteEntry) -> bool {
    local.size != remote.size || remote.mtime.is_none_or(|t| t.unix > local.mtime)
}

/// Remote paths that collide with a sibling on a case-insensitive file system (`A.txt` and
/// `a.txt` in one folder): all of them, to be skipped, since which one a local file would end
/// up as depends on the file system.
pub(crate) fn case_collisions(remote: &RemoteTree) -> Vec<String> {
    let mut seen: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for rel in remote.keys() {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        seen.entry(format!("{parent}/{}", name.to_lowercase()))
            .or_default()
            .push(rel);
    }
    let mut colliding: Vec<String> = seen
        .into_values()
        .filter(|rels| rels.len() > 1)
        .flatten()
        .map(str::to_string)
        .collect();
    colliding.sort();
    colliding
}

/// Decides what to do. `remote` holds every remote entry to mirror (safe names only).
pub(crate) fn plan(local: &LocalTree, remote: &RemoteTree, opts: PullOptions<'_>) -> PullPlan {
    let mut plan = PullPlan::default();
    let mut blocked_dirs: HashSet<String> = HashSet::new();
    // Local folders removed as a whole to make room for a remote file.
    let mut replaced_dirs: Vec<String> = Vec::new();
    for (rel, entry) in remote {
        if ancestors(rel).any(|a| blocked_dirs.contains(a)) {
            continue;
        }
        let here = local.entries.get(rel).map(|l| l.kind);
        let why = match (entry.kind, here) {
            (EntryKind::File, Some(LocalKind::Dir)) if !opts.delete => Some(CONFLICT),
            (EntryKind::Dir, Some(LocalKind::File)) | (EntryKind::File, Some(LocalKind::Dir)) => {
                if opts.protected.touches(rel) {
                    Some(NOT_REPLACED_PROTECTED)
                } else if !opts.allow_deletions {
                    Some(NOT_REPLACED_MAX_DELETE)
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(why) = why {
            plan.blocked.push((rel.clone(), why.to_string()));
            blocked_dirs.insert(rel.clone());
            continue;
        }
        match (entry.kind, here) {
            (EntryKind::Dir, Some(LocalKind::Dir)) => {}
            (EntryKind::Dir, Some(LocalKind::File)) => {
                plan.replace.push((rel.clone(), LocalKind::File));
                plan.mkdirs.push(rel.clone());
            }
            (EntryKind::Dir, None) => plan.mkdirs.push(rel.clone()),
            (EntryKind::File, Some(LocalKind::Dir)) => {
                let below = local.entries.range(format!("{rel}/")..);
                let inside: Vec<(String, LocalKind)> = below
                    .take_while(|(k, _)| is_below(k, rel))
                    .map(|(k, e)| (k.clone(), e.kind))
                    .collect();
                plan.replace.extend(inside.into_iter().rev());
                plan.replace.push((rel.clone(), LocalKind::Dir));
                replaced_dirs.push(rel.clone());
                plan.downloads.push(download(rel, entry));
            }
            (EntryKind::File, Some(LocalKind::File)) => {
                let here = &local.entries[rel];
                if opts.checksum && here.size == 0 && entry.size == 0 {
                    // Nothing to compare (proftpd refuses to hash an empty file).
                    plan.unchanged.push(rel.clone());
                } else if opts.checksum && here.size == entry.size {
                    plan.verify.push(download(rel, entry));
                } else if opts.checksum || needs_download(here, entry) {
                    plan.downloads.push(download(rel, entry));
                } else {
                    plan.unchanged.push(rel.clone());
                }
            }
            (EntryKind::File, None) => plan.downloads.push(download(rel, entry)),
            // Not in the tree the caller passes (skipped with a notice, and protected).
            (EntryKind::Symlink | EntryKind::Other, _) => {}
        }
    }
    plan.folder_times = remote
        .iter()
        .rev()
        .filter(|(rel, e)| e.kind == EntryKind::Dir && !opts.protected.covers(rel))
        .filter(|(rel, _)| {
            !blocked_dirs.contains(*rel) && !ancestors(rel).any(|a| blocked_dirs.contains(a))
        })
        .filter_map(|(rel, e)| Some((rel.clone(), e.mtime?.unix)))
        .collect();
    if opts.delete && opts.allow_deletions {
        let extraneous = local.entries.iter().filter(|(rel, _)| {
            !remote.contains_key(*rel)
                && !opts.protected.touches(rel)
                && !replaced_dirs.iter().any(|d| is_below(rel, d))
        });
        let folded: HashSet<String> = remote.keys().map(|k| k.to_lowercase()).collect();
        let (same_but_case, extraneous): (Vec<_>, Vec<_>) =
            extraneous.partition(|(rel, _)| folded.contains(&rel.to_lowercase()));
        plan.kept_for_case = same_but_case.into_iter().map(|(k, _)| k.clone()).collect();
        // Children sort after their folder: reversed, each folder comes after its content.
        plan.delete = extraneous
            .into_iter()
            .map(|(k, e)| (k.clone(), e.kind))
            .rev()
            .collect();
    }
    plan
}

fn download(rel: &str, entry: &RemoteEntry) -> Download {
    Download {
        rel: rel.to_string(),
        size: entry.size,
        mtime: entry.mtime.map(|t| t.unix),
        exact_time: entry
            .mtime
            .is_some_and(|t| t.precision == TimePrecision::Second),
    }
}

const CONFLICT: &str =
    "conflict: a remote file replaces a local folder; use --delete to replace it";

const NOT_REPLACED_PROTECTED: &str = "not replaced: part of the local entry in the way is excluded, could not be read, or is not fully listed on the server; nothing in it was removed";

const NOT_REPLACED_MAX_DELETE: &str =
    "not replaced: the local entry in its way would be removed, and the run removes nothing (--max-delete)";

/// The folders above `rel`, innermost first ("a/b/c" gives "a/b", "a").
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    rel.rmatch_indices('/').map(move |(i, _)| &rel[..i])
}

#[cfg(test)]
mod tests;
