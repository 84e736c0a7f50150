//! Which jobs a worker takes together: listings, and the simple path commands (MKD, DELE, RMD)
//! that go in one write (see [`crate::ftp::Connection::run_many`]).

use tokio_util::sync::CancellationToken;

use super::Queues;
use crate::engine::job::{Job, Task};
use crate::engine::plan::Op;
use crate::ftp::PathCommand;

/// Most folders a worker lists in one go (see [`crate::ftp::Connection::list_many`]).
const LIST_BATCH: usize = 32;

/// `first`, and the jobs of the same kind (`pick` gives what it needs of them) waiting right
/// now, up to [`LIST_BATCH`]; a job of another kind taken on the way is left in `next`.
pub(super) fn gather<T>(
    queues: &Queues,
    stop: &CancellationToken,
    first: (Task, T),
    pick: impl Fn(&Job) -> Option<T>,
    next: &mut Option<Task>,
) -> Vec<(Task, T)> {
    let mut batch = vec![first];
    while batch.len() < LIST_BATCH {
        let Some(task) = queues.try_next(stop) else {
            break;
        };
        match pick(&task.job) {
            Some(what) => batch.push((task, what)),
            None => {
                *next = Some(task);
                break;
            }
        }
    }
    batch
}

/// The simple command that carries out `job` and its path (relative to the root), if it is one
/// that can go in a batch (a deletion is not, when it is a move into `--backup-dir`).
pub(super) fn path_command(job: &Job, backing_up: bool) -> Option<(PathCommand, String)> {
    match job {
        Job::Run(Op::Mkdir(rel)) => Some((PathCommand::Mkd, rel.clone())),
        Job::Run(Op::DeleteFile(rel)) if !backing_up => Some((PathCommand::Dele, rel.clone())),
        Job::Run(Op::RemoveDir(rel)) => Some((PathCommand::Rmd, rel.clone())),
        Job::List(_)
        | Job::Fetch(_)
        | Job::Put { .. }
        | Job::Hash(_)
        | Job::Download(_)
        | Job::Run(Op::MakeRoot | Op::Cleanup(_) | Op::Upload { .. } | Op::DeleteFile(_)) => None,
    }
}
