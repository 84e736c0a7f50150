//! A pull (`ftpsync URL LOCAL_DIR`): the same run as a push with the roles swapped. The remote
//! tree, listed in parallel over the workers' connections ([`super::remote`]), is the source;
//! LOCAL_DIR is the destination. The server is only read: listings and RETR, never a command
//! that changes it. [`plan`] decides; the coordinator makes room and creates the folders
//! (local, quick), the workers [`download`] the files largest first, and `--delete` removes
//! what the server does not have only once every download succeeded.

pub(crate) mod download;
mod execute;
mod links;
pub(crate) mod plan;
mod verify;

pub(crate) use plan::Download;

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::plan::{Protected, RemoteTree};
use super::pool::Dispatcher;
use super::{Run, SyncError};
use crate::config::Config;
use crate::ftp::listing::EntryKind;
use crate::local::{self, LocalError, LocalTree, ScanOptions, Scope};
use crate::lock;
use crate::report::Summary;
use crate::state;
use plan::{PullOptions, PullPlan};

/// Runs one pull of `config`; `stop` asks it to finish the downloads in flight and end.
pub(crate) async fn run(config: &Config, stop: CancellationToken) -> Result<Summary, SyncError> {
    let started = Instant::now();
    let stop = stop.child_token();
    prepare_root(config)?;
    // Downloads always go to a temporary name first.
    let (_, mut pool, progress) = super::start_workers(config, &stop, true);
    let local = scan(config);
    let ready = pool.first_ready().await.map_err(SyncError::Connect);
    let local = match ready.and(local) {
        Ok(local) => local,
        Err(e) => {
            stop.cancel();
            pool.finish().await;
            return Err(e);
        }
    };
    let target = config.local_dir.display().to_string();
    let mut run = Run::new(config, target, "time", stop, progress);
    let outcome = run.pull(&mut pool, local).await;
    pool.finish().await;
    outcome?;
    Ok(run.finish(started))
}

/// LOCAL_DIR is locked for this process: one run at a time writes into it, whatever URL it
/// pulls from. A missing one is created (not in a dry run) only once the server's folder is
/// listed ([`create_root`]), and locked then.
fn prepare_root(config: &Config) -> Result<(), SyncError> {
    let root = &config.local_dir;
    if config.dry_run || std::fs::symlink_metadata(root).is_err() {
        return Ok(());
    }
    let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
    // On the folder itself too: runs with other state folders (or none) must not write into
    // the same temporary files.
    lock::hold_dir(&canonical, &canonical.display().to_string())?;
    let Some(dir) = &config.state_dir else {
        return Ok(());
    };
    let key = format!("pull into {}", canonical.display());
    let path = state::record_path(dir, &key).with_extension("lock");
    lock::hold(&path, &canonical.display().to_string())?;
    Ok(())
}

/// Creates LOCAL_DIR when missing (not in a dry run), and locks it (see [`prepare_root`]).
fn create_root(config: &Config) -> Result<(), SyncError> {
    let root = &config.local_dir;
    if !config.dry_run && std::fs::symlink_metadata(root).is_err() {
        std::fs::create_dir_all(root).map_err(|source| LocalError::Unreadable {
            path: root.clone(),
            source,
        })?;
    }
    prepare_root(config)
}

/// The local tree, as it stands: symbolic links are never followed (they are reported, and
/// stay); the deletion filter decides what is seen, so `--delete-excluded` sees excluded
/// entries too. A missing LOCAL_DIR is an empty one.
fn scan(config: &Config) -> Result<LocalTree, SyncError> {
    if std::fs::symlink_metadata(&config.local_dir).is_err() {
        return Ok(LocalTree::default());
    }
    let options = ScanOptions {
        max_depth: config.max_depth,
        filter: &config.remote_filter,
        follow_symlinks: false,
    };
    Ok(local::scan(&config.local_dir, options)?)
}

impl Run<'_> {
    /// Lists, plans and carries out one pull.
    async fn pull(&mut self, pool: &mut Dispatcher, mut local: LocalTree) -> Result<(), SyncError> {
        let temps = take_temporary_files(&mut local);
        let listed = self.list_remote(pool, &local, &Scope::Everything).await?;
        if self.root_missing {
            return Err(SyncError::MissingRemote(self.config.target.display_url()));
        }
        self.report_connect_errors(pool);
        let mut tree = listed.tree;
        let mut protected = listed.protected;
        let root_time = listed.root_time;
        for problem in std::mem::take(&mut local.problems) {
            if problem.is_failure {
                self.fail(&problem.rel, &problem.message);
            } else {
                let message = replaced_by_file(&problem, &tree);
                self.reporter.notice(&format!("{}: {message}", problem.rel));
            }
            // Unknown, or a link: never removed, never written through.
            protected.insert(problem.rel);
        }
        if self.config.follow_symlinks {
            tree = self.follow_links(tree, &mut protected);
        }
        self.skip_unmirrorable(&mut tree, &mut protected);
        if self.config.delete
            && !self.config.force
            && !tree.values().any(|e| e.kind != EntryKind::Dir)
        {
            return Err(SyncError::EmptyRemote(self.config.target.display_url()));
        }
        create_root(self.config)?;
        let plan_with = |allow_deletions| {
            let opts = PullOptions {
                delete: self.config.delete,
                protected: &protected,
                allow_deletions,
                checksum: self.config.checksum.is_some(),
            };
            plan::plan(&local, &tree, opts)
        };
        let mut plan = self.within_max_delete("local", plan_with, PullPlan::deletions);
        // Last, LOCAL_DIR itself (its folders are set deepest first), unless it is protected.
        if let Some(time) = root_time.filter(|_| !protected.covers("")) {
            plan.folder_times.push((String::new(), time.unix));
        }
        self.verify_by_hash(pool, &mut plan).await?;
        self.summary.unchanged = plan.unchanged.len() as u64;
        for (rel, why) in &plan.blocked {
            self.fail(rel, why);
        }
        for rel in &plan.kept_for_case {
            self.reporter.notice(&format!("{rel}: kept: a remote name differs from it only in case (on a case-insensitive disk it is that file); remove it by hand if it is not"));
        }
        if self.config.dry_run {
            self.pull_dry_run(&plan);
            return Ok(());
        }
        self.remove_stale_temps(temps, &plan);
        self.execute_pull(pool, &plan).await;
        Ok(())
    }

    /// `-L`: every remote symbolic link replaced by what it points to, when that lies inside the
    /// remote folder (see [`links`]); the others are reported, skipped and protected.
    fn follow_links(&mut self, tree: RemoteTree, protected: &mut Protected) -> RemoteTree {
        let filter = &self.config.filter;
        let followed = links::follow(tree, protected, &|rel, is_dir| {
            filter.is_excluded(rel, is_dir)
        });
        for (rel, why) in followed.skipped {
            self.summary.skipped_remote += 1;
            self.reporter
                .notice(&format!("{rel}: remote symbolic link not followed: {why}"));
            protected.insert(rel);
        }
        for rel in followed.protected {
            protected.insert(rel);
        }
        followed.tree
    }

    /// Takes out of `tree` what cannot be mirrored safely, reported and protected (the local
    /// entry of that name stays): remote symbolic links (without `-L`) and special entries, and
    /// names that differ only in case (which one a case-insensitive disk would keep is chance).
    fn skip_unmirrorable(&mut self, tree: &mut RemoteTree, protected: &mut Protected) {
        let odd: Vec<(String, &str)> = tree
            .iter()
            .filter_map(|(rel, e)| match e.kind {
                EntryKind::Symlink => Some((rel.clone(), "remote symbolic link; not followed")),
                EntryKind::Other => Some((rel.clone(), "neither a file nor a folder; skipped")),
                EntryKind::File | EntryKind::Dir => None,
            })
            .collect();
        let colliding = plan::case_collisions(tree).into_iter().map(|rel| {
            let why = "another remote name in its folder differs only in case; skipped";
            (rel, why)
        });
        for (rel, why) in odd.into_iter().chain(colliding) {
            self.summary.skipped_remote += 1;
            self.reporter.notice(&format!("{rel}: {why}"));
            let below = format!("{rel}/");
            tree.retain(|k, _| *k != rel && !k.starts_with(&below));
            protected.insert(rel);
        }
    }
}

/// What the notice of a local entry that is neither file nor folder says: a remote file of its
/// name replaces it (the download is renamed over it, never written through it).
fn replaced_by_file(problem: &local::LocalProblem, tree: &RemoteTree) -> String {
    let message = &problem.message;
    match tree.get(&problem.rel) {
        Some(e) if e.kind == EntryKind::File => {
            let what = message.strip_suffix("; skipped").unwrap_or(message);
            format!("{what}; replaced by the remote file (never written through)")
        }
        _ => message.clone(),
    }
}

/// Takes ftpsync's temporary files (of interrupted downloads, named exactly so) out of the
/// local tree: they are not the user's, neither mirrored nor counted; the plan decides which one a download resumes.
fn take_temporary_files(local: &mut LocalTree) -> Vec<String> {
    let temps: Vec<String> = local
        .entries
        .iter()
        .filter(|(rel, e)| {
            e.kind == local::LocalKind::File
                && local::write::is_download_temp(rel.rsplit('/').next().unwrap_or(rel))
        })
        .map(|(rel, _)| rel.clone())
        .collect();
    for rel in &temps {
        local.entries.remove(rel);
    }
    temps
}
