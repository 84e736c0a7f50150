//! Counting what a run did and saying it: each change's line as it happens, the summary's
//! counts, and its list of changes for `--json`. A dry run counts the plan instead.

use super::plan::{self, Op, Phase, Plan};
use super::Run;
use crate::report::Change;

impl Run<'_> {
    /// Counts what the plan would do, as a real run counts what it did.
    pub(super) fn dry_run(&mut self, plan: &Plan) {
        for phase in [Phase::Transfer, Phase::Delete] {
            for action in plan.actions.iter().filter(|a| a.phase == phase) {
                self.count(&action.op, None);
            }
        }
    }

    /// Counts a change and prints its line.
    pub(super) fn count(&mut self, op: &Op, bytes: Option<u64>) {
        // A root that merely listed as empty may have existed all along: not a change to show.
        // Temporary files are not the user's: their removal is not a change either.
        if (*op == Op::MakeRoot && !self.root_missing) || matches!(op, Op::Cleanup(_)) {
            return;
        }
        if *op == Op::MakeRoot {
            // The target itself: said once, not a change of the mirror nor a folder counted.
            let folder = &self.config.target.path;
            self.reporter.notice(&if self.config.dry_run {
                format!("remote folder {folder} does not exist yet; a real run creates it")
            } else {
                format!("created remote folder {folder}")
            });
            return;
        }
        self.reporter.change(&plan::change_line(op));
        let change = |action, path: String, bytes| Change {
            action,
            path,
            bytes,
        };
        let change = match op {
            Op::Mkdir(rel) => {
                self.summary.folders_created += 1;
                change("mkdir", format!("{rel}/"), None)
            }
            Op::Upload { rel, size, .. } => {
                let sent = bytes.unwrap_or(*size);
                if let Some(p) = &self.progress {
                    p.done(rel, sent);
                }
                self.summary.files_uploaded += 1;
                self.summary.bytes_uploaded += sent;
                change("upload", rel.clone(), Some(sent))
            }
            Op::DeleteFile(rel) => {
                self.summary.deleted += 1;
                change("delete", rel.clone(), None)
            }
            Op::RemoveDir(rel) => {
                self.summary.deleted += 1;
                change("delete", format!("{rel}/"), None)
            }
            Op::MakeRoot | Op::Cleanup(_) => return,
        };
        self.summary.changes.push(change);
    }
}
