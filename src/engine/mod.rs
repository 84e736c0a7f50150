//! One sync run, start to end: scan the local tree while the workers connect, list the remote
//! tree in parallel over the workers' connections, plan, then release the plan's actions to the
//! workers in dependency order (a folder exists before anything goes into it and is empty before
//! it is removed), largest uploads first. The summary is built from the workers' reports only.
//!
//! The engine drives the [`crate::ftp`] layer: [`remote`] lists, [`plan`] decides,
//! [`schedule`] orders, [`pool`] hands the [`job`]s to the [`worker`]s, each of which owns one
//! connection and runs [`upload`]s on it; what they learn about the server is in [`quirks`],
//! what the run keeps for the next one in [`persist`]. When progress is shown, the workers
//! register each upload's byte counter with the run's [`crate::progress::Tracker`], and the
//! coordinator counts it done there.

pub(crate) mod checksum;
pub(crate) mod job;
mod persist;
pub(crate) mod plan;
pub(crate) mod pool;
pub(crate) mod pull;
pub(crate) mod quirks;
mod remote;
pub(crate) mod schedule;
mod tally;
pub(crate) mod upload;
pub(crate) mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ftp::listing::EntryKind;
use crate::ftp::FtpError;
use crate::local::{self, LocalError, LocalKind, LocalTree, ScanOptions, Scope};
use crate::lock::LockError;
use crate::progress;
use crate::report::{self, Failure, Reporter, Summary};
use crate::state;
use crate::temp_name::RunToken;
use job::{Job, JobError, Outcome, WorkerContext};
use persist::{lock_folder, next_record};
use plan::{ContentCheck, Op, Phase, Plan, PlanOptions, Protected, RemoteTree};
use pool::{Dispatcher, Report};
use schedule::Schedule;

/// A run that could not start: nothing was changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error(transparent)]
    Connect(FtpError),
    #[error("cannot list the remote folder {path:?}: {error}")]
    ListRoot { path: String, error: String },
    #[error("stopped before anything was changed")]
    Interrupted,
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("local folder {} is empty: --delete would empty the remote folder; add --force if that is what you want", .0.display())]
    EmptyLocal(std::path::PathBuf),
    #[error("remote folder {0} lists empty: --delete would empty the local folder; add --force if that is what you want")]
    EmptyRemote(String),
    /// Never taken for a first deploy: that would upload everything, or trust what it should not.
    #[error("cannot read the --checksum manifest {path:?}: {reason}; nothing was changed (repair or remove it; without it ftpsync compares sizes and server hashes)")]
    Manifest { path: String, reason: String },
    #[error("cannot write the --checksum manifest {path:?}: {reason}; nothing was uploaded (ftpsync must replace it before uploading files it records: check the permissions of its folder)")]
    ManifestWrite { path: String, reason: String },
    #[error("--checksum with a pull compares files by the server's hash, and this server offers no hash command (HASH, XSHA256, XSHA1, XMD5, XCRC); run without --checksum to compare sizes and times")]
    NoServerHash,
}

/// Runs one sync of `config` over `scope`; `stop` asks it to finish the jobs in flight and end.
pub(crate) async fn run(
    config: &Config,
    scope: &Scope,
    stop: CancellationToken,
) -> Result<Summary, SyncError> {
    if config.direction == crate::direction::Direction::Pull {
        return pull::run(config, stop).await;
    }
    let started = Instant::now();
    // Our own token: ending this cycle's workers early must not stop the caller's later cycles.
    let stop = stop.child_token();
    let key = config.target.state_key();
    let record_path = config
        .state_dir
        .as_ref()
        .map(|d| state::record_path(d, &key));
    let scan = spawn_scan(config, scope);
    let (ctx, mut pool, progress) = start_workers(config, &stop, config.atomic);
    let local = match scan.await.expect("local scan task panicked") {
        // Checked in every cycle, scoped ones too: `rm -rf site/*` under --watch reports the
        // removed paths one by one, and the tree they leave is empty all the same.
        Ok(_)
            if config.delete
                && !config.force
                && local::is_empty(&config.local_dir, &config.filter) =>
        {
            Err(SyncError::EmptyLocal(config.local_dir.clone()))
        }
        Ok(tree) => Ok(tree),
        Err(e) => Err(e.into()),
    };
    let connected = pool.first_ready().await.map_err(SyncError::Connect);
    // Nothing is listed, let alone changed, before the lock on the remote folder is ours.
    let locked = connected.and_then(|()| lock_folder(config, &ctx));
    let (mut local, running) = match local.and_then(|l| locked.map(|c| (l, c))) {
        Ok(ready) => ready,
        Err(e) => {
            stop.cancel();
            pool.finish().await;
            return Err(e);
        }
    };

    let compare = if config.checksum.is_some() {
        "checksum"
    } else {
        "time"
    };
    let mut run = Run::new(config, config.target.display_url(), compare, stop, progress);
    for problem in &local.problems {
        if problem.is_failure {
            run.fail(&problem.rel, &problem.message);
        } else {
            run.reporter
                .notice(&format!("{}: {}", problem.rel, problem.message));
        }
    }

    // --checksum: the local files are hashed while the manifest is read and the tree listed.
    let mut hashing = None;
    let mut fetched = None;
    let login = ctx
        .whereabouts
        .get()
        .and_then(|(_, login)| login.as_deref());
    let checksum_cfg =
        (config.checksum.as_ref()).map(|c| checksum::settled(c, &config.target.path, login));
    if let Some(cfg) = &checksum_cfg {
        checksum::keep_local_copy_out(&run, cfg, &mut local);
        hashing = Some(checksum::spawn_hashing(&config.local_dir, &local));
        match run.fetch_manifest(&mut pool, cfg).await {
            Ok(f) => fetched = Some(f),
            Err(e) => {
                pool.finish().await;
                return Err(e);
            }
        }
    }
    let mut listed = match run.list_remote(&mut pool, &local, scope).await {
        Ok(listed) => listed,
        Err(e) => {
            pool.finish().await;
            return Err(e);
        }
    };
    run.report_connect_errors(&mut pool);
    if let Some(rel) = checksum_cfg.as_ref().and_then(|c| c.manifest_rel.as_ref()) {
        // ftpsync's own: never a change, never deleted.
        listed.tree.remove(rel);
        listed.protected.insert(rel.clone());
    }
    let hashes = match hashing {
        Some(h) => h.await.expect("local hashing task panicked"),
        None => Default::default(),
    };
    let no_manifest = crate::manifest::Manifest::default();
    let read_manifest = fetched.as_ref().and_then(|f| f.manifest.as_ref());
    let server_same = match fetched.as_ref().and_then(|f| f.server_hash) {
        Some(how) if !run.stop.is_cancelled() => {
            let manifest = read_manifest.unwrap_or(&no_manifest);
            run.server_verdicts(&mut pool, how, &local, &listed.tree, manifest)
                .await
        }
        _ => HashMap::new(),
    };
    let content = config.checksum.as_ref().map(|c| ContentCheck {
        manifest: read_manifest.unwrap_or(&no_manifest),
        hashes: &hashes,
        server_same: &server_same,
        // Once the server has a manifest, a file it does not record is not ftpsync's to adopt.
        adopt: c.adopt && read_manifest.is_none(),
    });

    let record = record_path
        .as_ref()
        .map(|p| state::load(p, &key))
        .unwrap_or_default();
    let leftovers = run.removable_leftovers(listed.leftovers);
    // What the local scan could not read is unknown, not absent: never deleted remotely.
    let mut protected = listed.protected;
    run.keep_unreadable_in_the_way(&mut local, &listed.tree, &mut protected);
    for problem in &local.problems {
        protected.insert(problem.rel.clone());
    }
    let plan_with = |allow_deletions| {
        plan::plan(
            &local,
            &listed.tree,
            PlanOptions {
                root_exists: listed.root_exists,
                delete: config.delete,
                filter: &config.remote_filter,
                record: &record,
                leftovers: &leftovers,
                protected: &protected,
                allow_deletions,
                content,
            },
        )
    };
    let plan = run.within_max_delete("remote", plan_with, Plan::deletions);
    run.summary.unchanged = plan.unchanged.len() as u64;
    for (rel, why) in &plan.blocked {
        run.fail(rel, why);
    }
    if let Some(cfg) = &config.checksum {
        run.summary.compared_by_hash = plan.compared_by_hash;
        for rel in &plan.drift {
            run.reporter.notice(&format!(
                "{rel}: changed on the server since ftpsync uploaded it; uploading it again"
            ));
        }
        if !config.dry_run {
            let inputs = checksum::Inputs {
                cfg,
                read: read_manifest.cloned(),
                scope,
                local: &local,
                remote: &listed.tree,
                plan: &plan,
                hashes: &hashes,
                server_same: &server_same,
            };
            run.checkpoints = Some(checksum::Checkpoints::new(inputs, config.local_dir.clone()));
        }
    }

    let uploaded = if config.dry_run {
        run.dry_run(&plan);
        Vec::new()
    } else if let Err(e) = run.prewrite_manifest(&mut pool).await {
        pool.finish().await;
        return Err(e);
    } else {
        // Nothing to upload, nothing to show.
        let shown = run
            .progress
            .clone()
            .filter(|_| plan.uploads().next().is_some());
        let shown = shown.map(|p| p.show(plan.uploads()));
        let uploaded = run.execute(&mut pool, &plan).await;
        if let Some(shown) = shown {
            shown.end().await;
        }
        uploaded
    };
    pool.finish().await;
    run.summary.drift_repaired = uploaded
        .iter()
        .filter(|(rel, _)| plan.drift.contains(rel))
        .count() as u64;
    if let Some(checkpoints) = run.checkpoints.take() {
        run.write_manifest(&ctx, checkpoints).await;
    }

    if let (Some(path), false) = (record_path, config.dry_run) {
        let next = next_record(&record, scope, &plan, uploaded, &local);
        if let Err(e) = state::save(&path, &key, next) {
            run.reporter.notice(&format!(
                "could not save the upload record {}: {e}",
                path.display()
            ));
        }
    }

    let summary = run.finish(started);
    if let Some(mark) = running.filter(|_| summary.failed == 0 && !summary.interrupted) {
        mark.end_clean();
    }
    Ok(summary)
}

/// Starts the run's workers, each connecting on its own, with the context they share (`atomic`:
/// uploads go under a temporary name) and the progress display's tracker, when it is shown.
fn start_workers(
    config: &Config,
    stop: &CancellationToken,
    atomic: bool,
) -> (
    Arc<WorkerContext>,
    Dispatcher,
    Option<Arc<progress::Tracker>>,
) {
    let progress = (config.progress && !config.dry_run).then(Arc::<progress::Tracker>::default);
    let ctx = Arc::new(WorkerContext {
        target: config.target.clone(),
        login: config.login.clone(),
        local_root: config.local_dir.clone(),
        timeout: config.timeout,
        retries: config.retries,
        atomic,
        quirks: Default::default(),
        stop: stop.clone(),
        run_token: RunToken::new(),
        whereabouts: Default::default(),
        progress: progress.clone(),
        bwlimit: config
            .bwlimit
            .map(|rate| Arc::new(crate::ftp::bwlimit::Bandwidth::new(rate))),
    });
    let pool = Dispatcher::start(Arc::clone(&ctx), config.jobs);
    (ctx, pool, progress)
}

/// Scans the local tree (all of it, or the scope's paths) on a blocking thread.
fn spawn_scan(
    config: &Config,
    scope: &Scope,
) -> tokio::task::JoinHandle<Result<LocalTree, LocalError>> {
    let (root, config, scope) = (config.local_dir.clone(), config.clone(), scope.clone());
    tokio::task::spawn_blocking(move || {
        let options = ScanOptions {
            max_depth: config.max_depth,
            filter: &config.filter,
            follow_symlinks: config.follow_symlinks,
        };
        match &scope {
            Scope::Everything => local::scan(&root, options),
            Scope::Paths(paths) => local::scan_paths(&root, paths, options),
        }
    })
}

/// The state of one run.
struct Run<'a> {
    config: &'a Config,
    reporter: Reporter,
    summary: Summary,
    stop: CancellationToken,
    /// The root's listing was refused: it certainly does not exist yet.
    root_missing: bool,
    /// The server said it is out of space: no further uploads are started.
    storage_full: Option<String>,
    /// `--checksum` (not in a dry run): the manifest as uploads complete.
    checkpoints: Option<checksum::Checkpoints>,
    /// The uploads' progress, when it is shown.
    progress: Option<Arc<progress::Tracker>>,
}

impl<'a> Run<'a> {
    /// A run of `config` about `target` (as the summary names it), comparing files by `compare`.
    fn new(
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
        }
    }
}

impl Run<'_> {
    /// The summary of the run that started at `started`, complete.
    fn finish(self, started: Instant) -> Summary {
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
    fn within_max_delete<P>(
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

    fn fail(&mut self, rel: &str, error: &str) {
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
    fn keep_unreadable_in_the_way(
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

    fn report_connect_errors(&mut self, pool: &mut Dispatcher) {
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
    async fn execute(&mut self, pool: &mut Dispatcher, plan: &Plan) -> Vec<(String, bool)> {
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
