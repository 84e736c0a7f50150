//! The state of one run ([`Run`]): its summary as it grows, its failures, its limits
//! (`--max-delete`), and the loop that hands a plan's operations to the workers in order and
//! counts what they report.

use super::*;

/// The state of one run.
pub(super) struct Run<'a> {
    pub(super) config: &'a Config,
    pub(super) reporter: Reporter,
    pub(super) summary: Summary,
    pub(super) stop: CancellationToken,
    /// The root's listing was refused: it certainly does not exist yet.
    pub(super) root_missing: bool,
    /// The server said it is out of space: no further uploads are started.
    pub(super) storage_full: Option<String>,
    /// `--checksum` (not in a dry run): the manifest as uploads complete.
    pub(super) checkpoints: Option<checksum::Checkpoints>,
    /// The uploads' progress, when it is shown.
    pub(super) progress: Option<Arc<progress::Tracker>>,
    /// `--backup-dir` inside the remote folder: its path there (never listed, never touched).
    pub(super) backup_rel: Option<String>,
}

impl<'a> Run<'a> {
    /// A run of `config` about `target` (as the summary names it), comparing files by `compare`.
    pub(super) fn new(
        config: &'a Config,
        target: String,
        compare: &'static str,
        stop: CancellationToken,
        progress: Option<Arc<progress::Tracker>>,
    ) -> Run<'a> {
        let direction = match config.direction {
            crate::direction::Direction::Push => "push",
            crate::direction::Direction::Pull => "pull",
        };
        Run {
            config,
            reporter: Reporter::new(config.output),
            summary: Summary {
                version: report::JSON_VERSION,
                target,
                direction,
                dry_run: config.dry_run,
                compare,
                ..Summary::default()
            },
            stop,
            root_missing: false,
            storage_full: None,
            checkpoints: None,
            progress,
            backup_rel: None,
        }
    }
}

impl Run<'_> {
    /// The summary of the run that started at `started`, complete.
    pub(super) fn finish(self, started: Instant) -> Summary {
        let mut summary = self.summary;
        summary.changes.sort();
        summary.interrupted = self.stop.is_cancelled();
        summary.elapsed_secs = started.elapsed().as_secs_f64();
        let bytes = summary.bytes_uploaded + summary.bytes_downloaded;
        summary.bytes_per_sec = bytes as f64 / summary.elapsed_secs.max(1e-3);
        summary.exit_code = summary.outcome().code();
        summary.warning = self.config.plaintext_password_warning();
        summary
    }

    /// The plan `plan_with(true)`, or, when its deletions (on the `side` named) would exceed
    /// `--max-delete`, a failure saying so and the plan without deletions.
    pub(super) fn within_max_delete<P>(
        &mut self,
        side: &str,
        plan_with: impl Fn(bool) -> P,
        deletions: impl Fn(&P) -> u64,
    ) -> P {
        let plan = plan_with(true);
        let count = deletions(&plan);
        match self.config.max_delete.filter(|&max| count > max) {
            Some(max) => {
                self.fail(
                    "",
                    &format!("refusing to delete {count} {side} entries, more than --max-delete {max}; nothing was deleted"),
                );
                plan_with(false)
            }
            None => plan,
        }
    }

    pub(super) fn fail(&mut self, rel: &str, error: &str) {
        let failure = Failure {
            path: rel.to_string(),
            error: error.to_string(),
        };
        self.reporter.failure(&failure);
        if let Some(p) = &self.progress {
            p.dropped(rel);
        }
        self.summary.failed += 1;
        self.summary.failures.push(failure);
    }

    /// A type change deletes the remote entry before the upload: the file must be readable
    /// first, or the run would delete and then fail to upload. An unreadable one fails, leaves
    /// the plan, and the remote entry in its way is protected.
    pub(super) fn keep_unreadable_in_the_way(
        &mut self,
        local: &mut LocalTree,
        remote: &RemoteTree,
        protected: &mut Protected,
    ) {
        let unreadable: Vec<(String, std::io::Error)> = local
            .entries
            .iter()
            .filter(|(rel, e)| {
                e.kind == LocalKind::File
                    && remote.get(*rel).is_some_and(|r| r.kind != EntryKind::File)
            })
            .filter_map(|(rel, _)| {
                let err = std::fs::File::open(self.config.local_dir.join(rel)).err()?;
                Some((rel.clone(), err))
            })
            .collect();
        for (rel, err) in unreadable {
            self.fail(
                &rel,
                &format!("cannot read local file ({err}); the remote entry in its way stays"),
            );
            local.entries.remove(&rel);
            protected.insert(rel);
        }
    }

    pub(super) fn report_connect_errors(&mut self, pool: &mut Dispatcher) {
        let errors = pool.take_connect_errors();
        let ready = pool.ready_workers();
        if let Some(first) = errors.first() {
            let message = if errors.iter().all(FtpError::is_connection_limit) {
                format!("the server accepts only {ready} connections at once ({first}); going on with {ready}")
            } else {
                format!(
                    "{} of {} connections failed ({first}); going on with {ready}",
                    errors.len(),
                    self.config.jobs,
                )
            };
            self.reporter.notice(&message);
        }
    }

    /// Carries out the plan; returns the paths uploaded, and whether their time was set.
    pub(super) async fn execute(
        &mut self,
        pool: &mut Dispatcher,
        plan: &Plan,
    ) -> Vec<(String, bool)> {
        let mut s = Schedule::new(plan);
        let mut uploaded = Vec::new();
        let mut running: HashMap<usize, usize> = HashMap::new();
        let mut delete_phase_started = false;
        loop {
            if !self.stop.is_cancelled() {
                while let Some(i) = s.high.pop_front() {
                    running.insert(pool.send_high(Job::Run(plan.actions[i].op.clone())), i);
                }
            }
            if let Some(why) = self.storage_full.clone() {
                for i in s.drain_uploads() {
                    self.fail(plan.actions[i].op.rel(), &format!("not uploaded: {why}"));
                }
            }
            if s.transfers_left == 0 && !delete_phase_started {
                delete_phase_started = true;
                if s.transfer_failures == 0 {
                    s.release_phase(Phase::Delete);
                    continue;
                }
                let skipped = s.skip_phase(Phase::Delete);
                if skipped > 0 {
                    self.reporter.notice(&format!(
                        "{skipped} deletions skipped because some transfers failed; they run once everything is uploaded"
                    ));
                }
            }
            if running.is_empty() && s.low.is_empty() && s.high.is_empty() {
                break;
            }
            let low = pool
                .low
                .clone()
                .filter(|_| !s.low.is_empty() && !self.stop.is_cancelled());
            let checkpoint = self.checkpoints.as_ref().and_then(|c| c.due());
            let checkpoint = checkpoint.filter(|_| !self.stop.is_cancelled());
            let report = tokio::select! {
                biased;
                report = pool.next() => report,
                permit = async { low.expect("guarded").reserve_owned().await }, if low.is_some() => {
                    if let Ok(permit) = permit {
                        let i = s.pop_low().expect("guarded");
                        running.insert(pool.send_low(permit, Job::Run(plan.actions[i].op.clone())), i);
                    }
                    continue;
                }
                _ = self.stop.cancelled(), if !self.stop.is_cancelled() => continue,
                _ = tokio::time::sleep_until(checkpoint.unwrap_or_else(Instant::now).into()), if checkpoint.is_some() => {
                    if let Some(c) = self.checkpoints.as_mut() {
                        c.send(pool);
                    }
                    continue;
                }
            };
            match report {
                Report::Done { id, result, .. } => {
                    if let Some(c) = self.checkpoints.as_mut() {
                        if c.take_report(id, &result) {
                            continue;
                        }
                    }
                    let Some(i) = running.remove(&id) else {
                        continue;
                    };
                    let op = &plan.actions[i].op;
                    match result {
                        Ok(Outcome::Done { bytes, time_set }) => {
                            self.count(op, Some(bytes));
                            if let Op::Upload { rel, .. } = op {
                                if let Some(c) = self.checkpoints.as_mut() {
                                    c.uploaded(rel, time_set);
                                }
                                uploaded.push((rel.clone(), time_set));
                            }
                            s.succeeded(i);
                        }
                        Ok(_) => s.succeeded(i),
                        Err(JobError::Interrupted) => s.abandon(i),
                        Err(e) => {
                            if let JobError::Remote(e) = &e {
                                if e.is_storage_full() && self.storage_full.is_none() {
                                    self.reporter.notice(&format!(
                                        "the server is out of space ({e}); starting no more uploads"
                                    ));
                                    self.storage_full =
                                        Some(format!("the server is out of space ({})", e));
                                }
                            }
                            self.fail(op.rel(), &e.to_string());
                            for j in s.failed(i) {
                                let why = format!("not done because {:?} failed", op.rel());
                                self.fail(plan.actions[j].op.rel(), &why);
                            }
                        }
                    }
                }
                Report::NoWorkers => {
                    if !self.stop.is_cancelled() {
                        for i in s.remaining() {
                            self.fail(
                                plan.actions[i].op.rel(),
                                "not done: no connection to the server left",
                            );
                        }
                    }
                    break;
                }
            }
            if self.stop.is_cancelled() && running.is_empty() {
                break;
            }
        }
        uploaded
    }
}
