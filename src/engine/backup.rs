//! `--backup-dir`: the remote files a run replaces or deletes are first moved (RNFR/RNTO, on the
//! same server) into one dated folder per run, `BACKUP/2026-11-30T120501Z/`, each under its path
//! relative to the sync root, so that a deploy can be rolled back. An upload that replaces a file
//! moves the old one just before its own rename into place; a deletion (`--delete`, a type
//! change) is a move instead of a DELE, and the folders it empties are removed as before. The
//! backup's folders are made on first use, once for all workers, so a run that replaces and
//! deletes nothing leaves no dated folder.
//!
//! The dated folder is the run's alone: it is the first of `STAMP`, `STAMP-2`, ... that this
//! run's MKD creates (a refused MKD means another run, in the same second, has it), so no move
//! ever lands on an earlier backup, and a file found there was moved by this run (a retry after
//! a move whose reply was lost). Before every rename into place, a file the listing did not
//! show is looked for (SIZE): one that came since, or the same name in another case on a server
//! that ignores case, goes to the backup too. A rename into place that fails puts the moved file
//! back, on a fresh connection when the failure broke this one.
//!
//! Never destroy without a backup: a file that cannot be moved there is neither replaced nor
//! deleted, and its job fails. A backup folder inside the remote folder is ftpsync's own, like
//! the manifest: never listed, uploaded into, or deleted.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use super::job::WorkerContext;
use super::plan::{Op, Plan, RemoteTree};
use super::{checksum, Run, SyncError};
use crate::config::{BackupDir, BACKUP_HOLDS_ROOT};
use crate::ftp::listing::EntryKind;
use crate::ftp::target::Target;
use crate::ftp::{Connection, FtpError};
use crate::local::LocalTree;

/// How many dated folders a run tries (`STAMP`, `STAMP-2`, ...) before it gives up.
const FOLDER_TRIES: u32 = 20;

/// One run's backup: its dated folder and what went there.
#[derive(Debug)]
pub(crate) struct Backup {
    /// The folder holding the dated ones, as FTP commands name it.
    dir: String,
    /// The dated folder's name, from the run's start (UTC).
    stamp: String,
    /// This run's dated folder once its MKD made it, as FTP commands name it.
    claimed: tokio::sync::OnceCell<String>,
    /// The files the plan's uploads replace (relative to the root); set once planned.
    replaced: OnceLock<HashSet<String>>,
    /// Folders of the backup known to exist (as FTP commands name them).
    made: Mutex<HashSet<String>>,
    /// The files moved there (relative to the root).
    kept: Mutex<HashSet<String>>,
}

impl Backup {
    /// The backup of a run that started at `now`, in its dated folder below `dir`.
    pub(crate) fn new(dir: &BackupDir, now: time::OffsetDateTime) -> Backup {
        let stamp =
            time::macros::format_description!("[year]-[month]-[day]T[hour][minute][second]Z");
        let stamp = now.to_offset(time::UtcOffset::UTC).format(&stamp);
        Backup {
            dir: dir.path.clone(),
            stamp: stamp.expect("a date formats"),
            claimed: tokio::sync::OnceCell::new(),
            replaced: OnceLock::new(),
            made: Mutex::default(),
            kept: Mutex::default(),
        }
    }

    /// This run's dated folder, as FTP commands name it: the one made, else the one it would be.
    pub(crate) fn folder(&self) -> String {
        match self.claimed.get() {
            Some(folder) => folder.clone(),
            None => self.candidate(1),
        }
    }

    /// The `n`th name this run's dated folder tries.
    fn candidate(&self, n: u32) -> String {
        match n {
            1 => format!("{}/{}", self.dir, self.stamp),
            n => format!("{}/{}-{n}", self.dir, self.stamp),
        }
    }

    /// Makes this run's dated folder: the first candidate its MKD creates. A refusal means
    /// another run has that one (or the folder cannot be written: then all are refused).
    async fn claim(&self, conn: &mut Connection) -> Result<String, FtpError> {
        self.make(conn, &self.dir).await?;
        let mut refused = None;
        for n in 1..=FOLDER_TRIES {
            let folder = self.candidate(n);
            match conn.mkdir(&folder).await {
                Ok(()) => {
                    self.made
                        .lock()
                        .expect("not poisoned")
                        .insert(folder.clone());
                    return Ok(folder);
                }
                Err(e) if e.is_permanent() => refused = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(refused.expect("tried at least once"))
    }

    /// Takes note of the files `plan` replaces (those `remote` lists as files); returns how
    /// many files the plan moves to the backup, deletions included.
    pub(crate) fn planned(&self, plan: &Plan, remote: &RemoteTree) -> u64 {
        let replaced: HashSet<String> = plan
            .uploads()
            .map(|(rel, _)| rel)
            .filter(|rel| remote.get(rel).is_some_and(|e| e.kind == EntryKind::File))
            .collect();
        let deleted = plan
            .actions
            .iter()
            .filter(|a| matches!(a.op, Op::DeleteFile(_)));
        let moves = (replaced.len() + deleted.count()) as u64;
        let _ = self.replaced.set(replaced);
        moves
    }

    /// How many files were moved to the backup.
    pub(crate) fn kept(&self) -> u64 {
        self.kept.lock().expect("not poisoned").len() as u64
    }

    /// Moves the remote file `rel` into the backup, making its folders first; a refusal says
    /// what that means for the file (`what`: "not replaced", "not deleted").
    async fn keep(
        &self,
        conn: &mut Connection,
        target: &Target,
        rel: &str,
        what: &str,
    ) -> Result<(), FtpError> {
        // A retry after the move itself succeeded.
        if self.kept.lock().expect("not poisoned").contains(rel) {
            return Ok(());
        }
        let claimed = self.claimed.get_or_try_init(|| self.claim(conn)).await;
        let dated = claimed.map_err(|e| {
            let (dir, tries) = (&self.dir, FOLDER_TRIES);
            refusal(e, format!("{what}, since no dated folder of this run's own could be made in --backup-dir {dir} (MKD, {tries} names tried; check that folder's permissions)"))
        })?;
        let to = format!("{dated}/{rel}");
        let folder = to.rsplit_once('/').map_or("", |(folder, _)| folder);
        self.make(conn, folder).await?;
        let from = target.remote_path(rel);
        if let Err(e) = conn.rename(&from, &to).await {
            // An earlier try's move that went through, its reply lost: only this run writes to
            // its dated folder.
            let moved = e.is_permanent() && matches!(conn.size(&to).await, Ok(Some(_)));
            if !moved {
                return Err(refusal(e, format!("{what}, since it could not be moved to --backup-dir as {to} (RNFR {from}, RNTO; check that folder's permissions)")));
            }
        }
        tracing::info!(path = %rel, to = %to, "moved to the backup");
        self.kept
            .lock()
            .expect("not poisoned")
            .insert(rel.to_string());
        Ok(())
    }

    /// Makes `folder` and its missing parents, each once for all workers. A refusal (550) is
    /// taken to mean "exists" (another worker's MKD, or an earlier run's): a folder that could
    /// not be made shows in the refusal of the move into it.
    async fn make(&self, conn: &mut Connection, folder: &str) -> Result<(), FtpError> {
        let ends = folder
            .match_indices('/')
            .map(|(i, _)| i)
            .chain([folder.len()]);
        for prefix in ends.map(|i| &folder[..i]).filter(|p| !p.is_empty()) {
            if self.made.lock().expect("not poisoned").contains(prefix) {
                continue;
            }
            match conn.mkdir(prefix).await {
                Err(e) if !e.is_permanent() => return Err(e),
                _ => self
                    .made
                    .lock()
                    .expect("not poisoned")
                    .insert(prefix.into()),
            };
        }
        Ok(())
    }
}

/// A refused command of a move into the backup as the job's error, saying what it means.
fn refusal(e: FtpError, operation: String) -> FtpError {
    match e {
        FtpError::Reply { code, text, .. } => FtpError::Reply {
            operation,
            code,
            text,
        },
        other => other,
    }
}

/// Whether the upload of `rel` replaces a file the listing showed.
fn replaces(backup: &Backup, rel: &str) -> bool {
    backup.replaced.get().is_some_and(|r| r.contains(rel))
}

/// Before an upload puts `rel` in place: the file it replaces goes to the backup, and so does
/// one the listing did not show but the server has there now (SIZE answers): it came since the
/// listing, or the server ignores case and has it under another one. A server without SIZE
/// cannot be asked.
pub(crate) async fn before_replacing(
    ctx: &WorkerContext,
    conn: &mut Connection,
    rel: &str,
) -> Result<(), FtpError> {
    let Some(backup) = &ctx.backup else {
        return Ok(());
    };
    if replaces(backup, rel) || backup.kept.lock().expect("not poisoned").contains(rel) {
        return backup.keep(conn, &ctx.target, rel, "not replaced").await;
    }
    match conn.size(&ctx.target.remote_path(rel)).await {
        Ok(Some(_)) => {
            tracing::info!(path = %rel, "a file the listing did not show is in the way");
            backup.keep(conn, &ctx.target, rel, "not replaced").await
        }
        Err(e) if !e.is_permanent() => Err(e),
        // No file there (550), or no SIZE to ask with.
        _ => Ok(()),
    }
}

/// Before a rename into place is tried again (the server refused it, perhaps because a file is
/// there): that file goes to the backup with `--backup-dir` (never a DELE), else it is deleted.
pub(crate) async fn clear_place(
    ctx: &WorkerContext,
    conn: &mut Connection,
    rel: &str,
) -> Result<(), FtpError> {
    if ctx.backup.is_some() {
        return before_replacing(ctx, conn, rel).await;
    }
    conn.delete(&ctx.target.remote_path(rel)).await.ok();
    Ok(())
}

/// After the rename into place of `rel` failed: the file moved to the backup for it goes back,
/// if it can (then a retry moves it again), on a fresh connection when the failure `broke`
/// this one.
pub(crate) async fn put_back(ctx: &WorkerContext, conn: &mut Connection, rel: &str, broke: bool) {
    let Some(backup) = ctx.backup.as_ref() else {
        return;
    };
    if !backup.kept.lock().expect("not poisoned").remove(rel) {
        return;
    }
    let (kept, place) = (
        format!("{}/{rel}", backup.folder()),
        ctx.target.remote_path(rel),
    );
    let put = match broke {
        false => conn.rename(&kept, &place).await,
        true => match Connection::open(&ctx.target, &ctx.login, ctx.timeout).await {
            Ok(mut fresh) => fresh.rename(&kept, &place).await,
            Err(e) => Err(e),
        },
    };
    match put {
        Ok(()) => {
            tracing::info!(path = %rel, "put back from the backup");
        }
        Err(e) => {
            tracing::warn!(path = %rel, error = %e, "could not put the file back from the backup");
            let mut kept = backup.kept.lock().expect("not poisoned");
            kept.insert(rel.to_string());
        }
    }
}

/// Deletes the remote file `rel`: into the backup with `--backup-dir`, DELE otherwise. (A remote
/// name that differs only in case from a local one is never planned for deletion: on a server
/// that ignores case it is the upload's own file; see [`crate::engine::plan`].)
pub(crate) async fn delete(
    ctx: &WorkerContext,
    conn: &mut Connection,
    rel: &str,
) -> Result<(), FtpError> {
    let Some(backup) = &ctx.backup else {
        return conn.delete(&ctx.target.remote_path(rel)).await;
    };
    backup.keep(conn, &ctx.target, rel, "not deleted").await
}

/// `dir`'s path relative to the sync root when it lies inside the remote folder, settled
/// against the login folder `login` (from PWD) as the manifest's is; refused when the backup
/// folder turns out to be the remote folder or above it.
pub(super) fn settled(
    dir: &BackupDir,
    target: &Target,
    login: Option<&str>,
) -> Result<Option<String>, SyncError> {
    // Any path inside the remote folder lies below the backup folder only if the remote folder
    // is at or below it.
    if checksum::inside(&target.remote_path("x"), &dir.path, login).is_some() {
        return Err(SyncError::BackupHoldsRoot {
            path: dir.path.clone(),
            why: BACKUP_HOLDS_ROOT,
        });
    }
    Ok(dir
        .rel
        .clone()
        .or_else(|| checksum::inside(&dir.path, &target.path, login)))
}

/// The local entries at the backup folder's place, and below it, are never uploaded: that
/// folder on the server is ftpsync's. Taken out of `local` with a notice.
pub(super) fn keep_local_copy_out(run: &Run<'_>, rel: &str, local: &mut LocalTree) {
    if local.take_out(rel) {
        let message = format!("{rel}: not uploaded: that remote folder is the --backup-dir");
        run.reporter.notice(&message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &str, rel: Option<&str>) -> BackupDir {
        BackupDir {
            path: path.into(),
            rel: rel.map(str::to_string),
        }
    }

    #[test]
    fn each_run_has_a_folder_named_by_its_utc_time() {
        let at = time::macros::datetime!(2026-11-30 13:05:01 +01:00);
        let backup = Backup::new(&dir("bak", None), at);
        assert_eq!(backup.folder(), "bak/2026-11-30T120501Z");
        assert_eq!(backup.candidate(2), "bak/2026-11-30T120501Z-2");
        let backup = Backup::new(&dir("/srv/bak", None), at);
        assert_eq!(backup.folder(), "/srv/bak/2026-11-30T120501Z");
    }

    #[test]
    fn the_backup_folder_is_found_inside_the_remote_folder_once_the_login_is_known() {
        let target = Target::parse("ftp://h/www").unwrap();
        let rel = |path: &str, login| settled(&dir(path, None), &target, login).unwrap();
        assert_eq!(
            rel("/home/u/www/.bak", Some("/home/u")),
            Some(".bak".into())
        );
        assert_eq!(rel("/home/u/bak", Some("/home/u")), None);
        assert_eq!(rel("/home/u/www/.bak", None), None, "cannot be told");
        let given = dir("www/.bak", Some(".bak"));
        assert_eq!(settled(&given, &target, None).unwrap(), Some(".bak".into()));
    }

    #[test]
    fn a_backup_folder_holding_the_remote_folder_is_refused_once_the_login_is_known() {
        let target = Target::parse("ftp://h/www").unwrap();
        for above in ["/home/u", "/home/u/www", "/home", "/home/u/"] {
            let err = settled(&dir(above, None), &target, Some("/home/u")).expect_err(above);
            assert!(err.to_string().contains("--backup-dir"), "{err}");
        }
        assert!(settled(&dir("/home/u/www2", None), &target, Some("/home/u")).is_ok());
    }
}
