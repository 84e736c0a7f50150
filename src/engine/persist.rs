//! What one run keeps beyond itself: the lock on the remote folder (with the mark of the cycle
//! running) and the record of uploads the next run compares with.

use crate::config::Config;
use crate::engine::job::WorkerContext;
use crate::engine::plan::Plan;
use crate::engine::SyncError;
use crate::local::{LocalTree, Relation, Scope};
use crate::lock;
use crate::state::{self, Record, Seen};

/// Takes the lock on the remote folder the workers reached, for the rest of the process (see
/// [`lock`]), and marks this cycle running until the returned mark is dropped. A dry run
/// changes nothing and takes neither.
pub(super) fn lock_folder(
    config: &Config,
    ctx: &WorkerContext,
) -> Result<Option<lock::CycleMark>, SyncError> {
    let Some(dir) = &config.state_dir else {
        return Ok(None);
    };
    if config.dry_run {
        return Ok(None);
    }
    let key = match ctx.whereabouts.get() {
        Some((Some(addr), login_dir)) => lock::folder_key(
            &config.login.user,
            *addr,
            login_dir.as_deref(),
            &config.target.path,
        ),
        _ => config.target.state_key(),
    };
    let path = state::record_path(dir, &key).with_extension("lock");
    lock::hold(&path, &config.target.display_url())?;
    Ok(Some(lock::mark_cycle(dir, &ctx.run_token)?))
}
/// The record of uploads after this cycle: paths it did not look at keep what the record said
/// of them, unchanged files keep their entry, and the files uploaded get a new one.
pub(super) fn next_record(
    record: &Record,
    scope: &Scope,
    plan: &Plan,
    uploaded: Vec<(String, bool)>,
    local: &LocalTree,
) -> Record {
    let mut next: Record = record
        .iter()
        .filter(|(rel, _)| scope.relation(rel) == Relation::Outside)
        .map(|(rel, seen)| (rel.clone(), *seen))
        .collect();
    for rel in &plan.unchanged {
        if let Some(seen) = record.get(rel) {
            next.insert(rel.clone(), *seen);
        }
    }
    for (rel, time_set) in uploaded {
        if let Some(entry) = local.entries.get(&rel) {
            next.insert(rel, Seen::of(entry, time_set));
        }
    }
    next
}
