//! Carrying out a pull plan: the local removals that make room and the folders (on the
//! coordinator: quick, and in order), the downloads over the workers largest first (a full
//! local disk starts no more), then `--delete` once every download succeeded, and last the
//! folders' remote times; and the count of each change, as a push counts its own.

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;

use super::plan::{Download, PullPlan};
use crate::engine::job::{Job, JobError, Outcome};
use crate::engine::pool::{Dispatcher, Report};
use crate::engine::Run;
use crate::local::{is_below, write, LocalKind};
use crate::report::{escape_controls, human_bytes, Change};

/// A change made to the local tree, to count and show.
enum Done<'a> {
    Mkdir(&'a str),
    Download(&'a str, u64),
    Delete(&'a str, LocalKind),
}

impl Run<'_> {
    /// Counts what the plan would do, as a real run counts what it did.
    pub(super) fn pull_dry_run(&mut self, plan: &PullPlan) {
        for (rel, kind) in &plan.replace {
            self.count_pull(Done::Delete(rel, *kind));
        }
        for rel in &plan.mkdirs {
            self.count_pull(Done::Mkdir(rel));
        }
        for d in &plan.downloads {
            self.count_pull(Done::Download(&d.rel, d.size));
        }
        for (rel, kind) in &plan.delete {
            self.count_pull(Done::Delete(rel, *kind));
        }
    }

    /// Removes the temporary files of interrupted downloads that no download of this plan
    /// resumes (the remote file changed, or is gone).
    pub(super) fn remove_stale_temps(&mut self, temps: Vec<String>, plan: &PullPlan) {
        let resumed: HashSet<String> = plan.downloads.iter().map(temp_rel).collect();
        let root = &self.config.local_dir;
        let stale: Vec<String> = temps.into_iter().filter(|t| !resumed.contains(t)).collect();
        let removed = stale
            .iter()
            .filter(|rel| write::remove(root, rel).is_ok())
            .count();
        if removed > 0 {
            self.reporter.notice(&format!(
                "removed {removed} temporary file(s) left by an interrupted download"
            ));
        }
    }

    /// Carries out the plan (see the module's header).
    pub(super) async fn execute_pull(&mut self, pool: &mut Dispatcher, plan: &PullPlan) {
        let root = self.config.local_dir.clone();
        let mut failures = 0;
        for (rel, kind) in &plan.replace {
            match write::remove(&root, rel) {
                Ok(()) => self.count_pull(Done::Delete(rel, *kind)),
                Err(e) => {
                    failures += 1;
                    self.fail(
                        rel,
                        &format!("cannot remove the local entry in the way: {e}"),
                    );
                }
            }
        }
        let mut missing: Vec<&str> = Vec::new();
        for rel in &plan.mkdirs {
            let made = match missing.iter().find(|m| is_below(rel, m)) {
                Some(parent) => Err(format!("not created because {parent:?} could not be")),
                None => write::make_dir(&root, rel)
                    .map_err(|e| format!("cannot create the local folder: {e}")),
            };
            match made {
                Ok(()) => self.count_pull(Done::Mkdir(rel)),
                Err(why) => {
                    failures += 1;
                    self.fail(rel, &why);
                    missing.push(rel);
                }
            }
        }
        let mut queue: Vec<&Download> = Vec::new();
        for d in &plan.downloads {
            match missing.iter().find(|m| is_below(&d.rel, m)) {
                Some(parent) => {
                    failures += 1;
                    self.fail(
                        &d.rel,
                        &format!("not downloaded: {parent:?} could not be created"),
                    );
                }
                None => queue.push(d),
            }
        }
        // Largest last: popped first.
        queue.sort_by_key(|d| (d.size, std::cmp::Reverse(d.rel.clone())));
        let shown = (self.progress.clone()).filter(|_| !queue.is_empty());
        let shown = shown.map(|p| p.show(queue.iter().map(|d| (d.rel.clone(), d.size))));
        failures += self.download_all(pool, &mut queue).await;
        if let Some(shown) = shown {
            shown.end().await;
        }
        // Every download reported is in place (a worker reports one once it is renamed into
        // place, and download_all waits for all it started): nothing changes a folder after
        // the deletions. A stopped run leaves the times to the next one.
        if self.stop.is_cancelled() {
            return;
        }
        self.delete_extraneous(plan, failures);
        self.set_folder_times(plan);
    }

    /// `--delete`: removes what the server does not have, only when every download succeeded.
    fn delete_extraneous(&mut self, plan: &PullPlan, failures: usize) {
        if plan.delete.is_empty() {
            return;
        }
        if failures > 0 {
            self.reporter.notice(&format!(
                "{} deletions skipped because some downloads failed; they run once everything is downloaded",
                plan.delete.len()
            ));
            return;
        }
        let root = &self.config.local_dir;
        for (rel, kind) in &plan.delete {
            match write::remove(root, rel) {
                Ok(()) => self.count_pull(Done::Delete(rel, *kind)),
                Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => self.reporter.notice(
                    &format!("{rel}/: kept: it holds entries that are excluded or not mirrored"),
                ),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => self.fail(rel, &format!("cannot delete: {e}")),
            }
        }
    }

    /// Gives each mirrored folder its remote time, once nothing changes what it holds (an
    /// entry created or removed in a folder makes its time now). A folder that is not there
    /// (it could not be created: that failed already) is passed over; a time that cannot be
    /// set is a warning, one line a folder (the first few), never a failure.
    fn set_folder_times(&mut self, plan: &PullPlan) {
        const NAMED: usize = 10;
        let root = &self.config.local_dir;
        let mut unset = 0;
        for (rel, unix) in &plan.folder_times {
            match write::set_folder_time(root, rel, *unix) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    unset += 1;
                    if unset <= NAMED {
                        let line = format!("{rel}/: warning: its time was not set: {e}");
                        self.reporter.notice(&line);
                    }
                }
            }
        }
        if unset > NAMED {
            self.reporter.notice(&format!(
                "warning: the times of {} more folders were not set",
                unset - NAMED
            ));
        }
    }

    /// Downloads `queue` over the workers, largest first; returns how many failed.
    async fn download_all(&mut self, pool: &mut Dispatcher, queue: &mut Vec<&Download>) -> usize {
        let mut failures = 0;
        let mut running: HashMap<usize, &Download> = HashMap::new();
        let mut disk_full: Option<String> = None;
        loop {
            if let Some(why) = &disk_full {
                let why = format!("not downloaded: {why}");
                for d in std::mem::take(queue) {
                    failures += 1;
                    self.fail(&d.rel, &why);
                }
            }
            if running.is_empty() && (queue.is_empty() || self.stop.is_cancelled()) {
                break;
            }
            let low = (pool.low.clone()).filter(|_| !queue.is_empty() && !self.stop.is_cancelled());
            let report = tokio::select! {
                biased;
                report = pool.next() => report,
                permit = async { low.expect("guarded").reserve_owned().await }, if low.is_some() => {
                    if let (Ok(permit), Some(d)) = (permit, queue.pop()) {
                        running.insert(pool.send_low(permit, Job::Download(d.clone())), d);
                    }
                    continue;
                }
                _ = self.stop.cancelled(), if !self.stop.is_cancelled() => continue,
            };
            let (id, result) = match report {
                Report::Done { id, result } => (id, result),
                Report::NoWorkers => {
                    if !self.stop.is_cancelled() {
                        for d in std::mem::take(queue)
                            .into_iter()
                            .chain(running.into_values())
                        {
                            failures += 1;
                            self.fail(&d.rel, "not done: no connection to the server left");
                        }
                    }
                    break;
                }
            };
            let Some(d) = running.remove(&id) else {
                continue;
            };
            match result {
                Ok(Outcome::Done { bytes, .. }) => self.count_pull(Done::Download(&d.rel, bytes)),
                Ok(_) | Err(JobError::Interrupted) => {}
                Err(e) => {
                    failures += 1;
                    if let (JobError::DiskFull(why), None) = (&e, &disk_full) {
                        self.reporter
                            .notice("the local disk is full; starting no more downloads");
                        disk_full = Some(why.clone());
                    }
                    self.fail(&d.rel, &e.to_string());
                }
            }
        }
        failures
    }

    /// Counts a change and prints its line: `+ dir/`, `< file (12.3 KiB)`, `- file`, `- dir/`.
    fn count_pull(&mut self, done: Done<'_>) {
        let (line, change) = match done {
            Done::Mkdir(rel) => {
                self.summary.folders_created += 1;
                (
                    format!("+ {rel}/"),
                    change("mkdir", format!("{rel}/"), None),
                )
            }
            Done::Download(rel, bytes) => {
                if let Some(p) = &self.progress {
                    p.done(rel, bytes);
                }
                self.summary.files_downloaded += 1;
                self.summary.bytes_downloaded += bytes;
                let line = format!("< {rel} ({})", human_bytes(bytes));
                (line, change("download", rel.to_string(), Some(bytes)))
            }
            Done::Delete(rel, kind) => {
                self.summary.deleted += 1;
                let shown = match kind {
                    LocalKind::Dir => format!("{rel}/"),
                    LocalKind::File => rel.to_string(),
                };
                (format!("- {shown}"), change("delete", shown, None))
            }
        };
        self.reporter.change(&escape_controls(&line));
        self.summary.changes.push(change);
    }
}

fn change(action: &'static str, path: String, bytes: Option<u64>) -> Change {
    Change {
        action,
        path,
        bytes,
    }
}

/// The temporary file a download of `d` writes (relative to the root).
fn temp_rel(d: &Download) -> String {
    let (dir, name) = match d.rel.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), d.rel.as_str()),
    };
    format!("{dir}{}", write::temp_name(name, d.size, d.mtime))
}
