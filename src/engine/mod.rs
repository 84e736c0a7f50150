//! One sync run, start to end: scan the local tree while the workers connect, list the remote
//! tree in parallel over the workers' connections, plan, then release the plan's actions to the
//! workers in dependency order (a folder exists before anything goes into it and is empty before
//! it is removed), largest uploads first. The summary is built from the workers' reports only.
//!
//! The engine drives the [`crate::ftp`] layer: [`remote`] lists, [`plan`] decides,
//! [`schedule`] orders, [`pool`] hands the [`job`]s to the [`worker`]s, each of which owns one
//! connection and runs [`upload`]s on it; what they learn about the server is in [`quirks`],
//! what the run keeps for the next one in [`persist`], what it replaces or deletes in
//! [`backup`] (`--backup-dir`). When progress is shown, the workers
//! register each upload's byte counter with the run's [`crate::progress::Tracker`], and the
//! coordinator counts it done there.

pub(crate) mod backup;
pub(crate) mod checksum;
pub(crate) mod job;
mod perms;
mod persist;
pub(crate) mod plan;
pub(crate) mod pool;
pub(crate) mod pull;
pub(crate) mod quirks;
mod remote;
mod run_state;
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
    #[error("remote folder {0} does not exist (or the server refuses to list it); check the URL; nothing was changed")]
    MissingRemote(String),
    /// Never taken for a first deploy: that would upload everything, or trust what it should not.
    #[error("cannot read the --checksum manifest {path:?}: {reason}; nothing was changed (repair or remove it; without it ftpsync compares sizes and server hashes)")]
    Manifest { path: String, reason: String },
    #[error("cannot write the --checksum manifest {path:?}: {reason}; nothing was uploaded (ftpsync must replace it before uploading files it records: check the permissions of its folder)")]
    ManifestWrite { path: String, reason: String },
    #[error("--backup-dir {path:?}: {why}; nothing was changed")]
    BackupHoldsRoot { path: String, why: &'static str },
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
    // With --backup-dir, --inplace uploads go under a temporary name too: a move to the backup
    // before a STOR that fails could not be undone.
    let atomic = config.atomic || config.backup.is_some();
    let (ctx, mut pool, progress) = start_workers(config, &stop, atomic);
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
    if !config.atomic && config.backup.is_some() {
        run.reporter.notice(INPLACE_WITH_BACKUP);
    }
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
    let settled = (config.backup.as_ref()).map(|b| backup::settled(b, &config.target, login));
    match settled.transpose() {
        Ok(rel) => run.backup_rel = rel.flatten(),
        Err(e) => {
            pool.finish().await;
            return Err(e);
        }
    }
    if let Some(rel) = &run.backup_rel {
        backup::keep_local_copy_out(&run, rel, &mut local);
    }
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
    if let Some(backup) = &ctx.backup {
        // A dry run reports what would go there; a real run counts what did, below.
        run.summary.backed_up = backup.planned(&plan, &listed.tree);
        run.summary.backup_dir = Some(backup.folder());
    }
    for (rel, why) in &plan.blocked {
        run.fail(rel, why);
    }
    for (remote, local) in &plan.kept_case_twins {
        run.reporter.notice(&format!(
            "{remote}: not deleted: it differs only in case from the local {local}, and on a server that ignores case deleting it would delete {local} (delete it by hand if the server tells them apart)"
        ));
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
    if let Some(backup) = ctx.backup.as_ref().filter(|_| !config.dry_run) {
        run.summary.backed_up = backup.kept();
        run.summary.backup_dir = Some(backup.folder());
    }
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

/// Why `--inplace` does not apply with `--backup-dir`.
const INPLACE_WITH_BACKUP: &str = "--inplace is ignored with --backup-dir: uploads go under a temporary name, so that a refused upload cannot leave the site without the file it replaces";

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
        backup: (config.backup.as_ref())
            .map(|b| backup::Backup::new(b, time::OffsetDateTime::now_utc())),
        modes: config.modes.clone(),
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

use run_state::Run;
