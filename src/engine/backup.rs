//! `--backup-dir`: the remote files a run replaces or deletes are first moved (RNFR/RNTO, on the
//! same server) into one dated folder per run, `BACKUP/2026-11-30T120501Z/`, each under its path
//! relative to the sync root, so that a deploy can be rolled back. An upload that replaces a file
//! moves the old one just before its own rename into place (with `--inplace`, before its STOR);
//! a deletion (`--delete`, a type change) is a move instead of a DELE, and the folders it empties
//! are removed as before. The backup's folders are made on first use, once for all workers, so a
//! run that replaces and deletes nothing leaves no dated folder.
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

/// One run's backup: its dated folder and what went there.
#[derive(Debug)]
pub(crate) struct Backup {
    /// This run's dated folder, as FTP commands name it.
    pub(crate) folder: String,
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
            folder: format!("{}/{}", dir.path, stamp.expect("a date formats")),
            replaced: OnceLock::new(),
            made: Mutex::default(),
            kept: Mutex::default(),
        }
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
        let to = format!("{}/{rel}", self.folder);
        let folder = to.rsplit_once('/').map_or("", |(folder, _)| folder);
        self.make(conn, folder).await?;
        let from = target.remote_path(rel);
        conn.rename(&from, &to).await.map_err(|e| match e {
            FtpError::Reply { code, text, .. } => FtpError::Reply {
                operation: format!(
                    "{what}, since it could not be moved to --backup-dir as {to} (RNFR {from}, RNTO; check that folder's permissions)"
                ),
                code,
                text,
            },
            other => other,
        })?;
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

/// Whether the upload of `rel` replaces a file that goes to the backup first (such uploads are
/// sent one command at a time: the move must come between the size check and the rename).
pub(crate) fn replaces(ctx: &WorkerContext, rel: &str) -> bool {
    let replaced = ctx.backup.as_ref().and_then(|b| b.replaced.get());
    replaced.is_some_and(|r| r.contains(rel))
}

/// Before an upload puts `rel` in place: the file it replaces goes to the backup.
pub(crate) async fn before_replacing(
    ctx: &WorkerContext,
    conn: &mut Connection,
    rel: &str,
) -> Result<(), FtpError> {
    match &ctx.backup {
        Some(backup) if replaces(ctx, rel) => {
            backup.keep(conn, &ctx.target, rel, "not replaced").await
        }
        _ => Ok(()),
    }
}

/// After the rename into place of `rel` failed: the file moved to the backup for it goes back,
/// if it can (then a retry moves it again).
pub(crate) async fn put_back(ctx: &WorkerContext, conn: &mut Connection, rel: &str) {
    let Some(backup) = ctx.backup.as_ref().filter(|_| replaces(ctx, rel)) else {
        return;
    };
    if !backup.kept.lock().expect("not poisoned").remove(rel) {
        return;
    }
    let (kept, place) = (
        format!("{}/{rel}", backup.folder),
        ctx.target.remote_path(rel),
    );
    if let Err(e) = conn.rename(&kept, &place).await {
        tracing::warn!(path = %rel, error = %e, "could not put the file back from the backup");
        backup
            .kept
            .lock()
            .expect("not poisoned")
            .insert(rel.to_string());
    }
}

/// Deletes the remote file `rel`: into the backup with `--backup-dir`, DELE otherwise.
pub(crate) async fn delete(
    ctx: &WorkerContext,
    conn: &mut Connection,
    rel: &str,
) -> Result<(), FtpError> {
    match &ctx.backup {
        Some(backup) => backup.keep(conn, &ctx.target, rel, "not deleted").await,
        None => conn.delete(&ctx.target.remote_path(rel)).await,
    }
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
        assert_eq!(backup.folder, "bak/2026-11-30T120501Z");
        let backup = Backup::new(&dir("/srv/bak", None), at);
        assert_eq!(backup.folder, "/srv/bak/2026-11-30T120501Z");
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
