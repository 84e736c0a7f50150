//! One upload on one connection: the temporary name it is stored under, the transfer
//! (pipelined where the connection allows, one command at a time otherwise), the size check,
//! the mode (`--chmod`), the rename over the target, the modification time, and what its
//! outcome means for the job (a file that changed meanwhile is sent again; a server that
//! mishandles pipelining gets none; a full server stops all uploads).

use std::path::{Path, PathBuf};

use crate::engine::backup;
use crate::engine::job::{JobError, Outcome, WorkerContext};
use crate::engine::perms;
use crate::engine::quirks::TimeSetting;
use crate::ftp::chain;
use crate::ftp::{Connection, FtpError, TimeSetter, UploadError};
use crate::temp_name::temp_path;

/// Files at least this large resume an interrupted upload instead of starting over: below it,
/// the extra SIZE round trip costs more than resending.
const RESUME_MIN_SIZE: u64 = 8 * 1024 * 1024;

/// One try at the upload job of `rel` (two when a failure had to be told from a server that
/// mishandles pipelining: `attempt` counts them); a file that changes while it is sent is sent
/// again, once.
pub(crate) async fn upload_job(
    ctx: &WorkerContext,
    conn: &mut Connection,
    rel: &str,
    size: u64,
    mtime: i64,
    attempt: &mut u32,
) -> Result<Outcome, JobError> {
    if ctx.quirks.storage_full() {
        return Err(JobError::Local(
            "not uploaded: the server is out of space".into(),
        ));
    }
    let file = FileUpload {
        rel: rel.to_string(),
        remote: ctx.target.remote_path(rel),
        local: ctx.local_root.join(rel),
        size,
        mtime,
    };
    for _ in 0..2 {
        if let Some(outcome) = upload(ctx, conn, &file, attempt).await? {
            return Ok(outcome);
        }
        tracing::info!(path = %rel, "file changed while it was uploaded; sending it again");
    }
    Err(JobError::Local(
        "the file keeps changing while it is uploaded; try again later".into(),
    ))
}

/// Size and modification time of a local file, to notice a change during its upload.
pub(crate) fn local_version(path: &Path) -> Result<Version, JobError> {
    chain::version_of(path).map_err(|e| JobError::Local(format!("cannot read local file: {e}")))
}

/// A file to upload: where it goes, where it is, and what the plan saw of it.
pub(crate) struct FileUpload {
    /// Relative to the local root (and the remote folder).
    pub(crate) rel: String,
    pub(crate) remote: String,
    pub(crate) local: PathBuf,
    pub(crate) size: u64,
    pub(crate) mtime: i64,
}

/// One try at an upload (see [`upload_job`] for `attempt`); None when the local file changed
/// meanwhile (nothing was put in place). Atomic uploads go to the temporary name and are
/// renamed into place; a large file's interrupted transfer is resumed where the server kept its
/// beginning.
async fn upload(
    ctx: &WorkerContext,
    conn: &mut Connection,
    file: &FileUpload,
    attempt: &mut u32,
) -> Result<Option<Outcome>, JobError> {
    let before = local_version(&file.local)?;
    let stored_as = if ctx.atomic {
        temp_path(&file.remote, &ctx.run_token)
    } else {
        file.remote.clone()
    };
    let mut offset = 0;
    if *attempt > 1 && ctx.atomic && file.size >= RESUME_MIN_SIZE {
        if let Ok(Some(kept)) = conn.size(&stored_as).await {
            if kept < file.size {
                tracing::info!(path = %file.remote, kept, "resuming the interrupted upload");
                offset = kept;
            }
        }
    }
    // With --backup-dir, the place is looked at between the size check and the rename.
    let pipelined =
        ctx.atomic && conn.can_pipeline() && ctx.quirks.pipelining() && ctx.backup.is_none();
    let result = if pipelined {
        let up = pipelined_upload(ctx, conn, file, &stored_as, offset, before);
        let stored = conn.store_pipelined(up).await;
        stored_outcome(ctx, Some(conn), file, &stored_as, before, stored).await
    } else {
        sequential(ctx, conn, file, &stored_as, offset, before).await
    };
    let tried = Tried { pipelined, attempt };
    job_result(ctx, Some(conn), file, &stored_as, before, result, tried).await
}

/// How an upload's try went out, for [`job_result`]: `attempt` is the number of that try, counted
/// up when the failure is checked with another one.
pub(crate) struct Tried<'a> {
    pub(crate) pipelined: bool,
    pub(crate) attempt: &'a mut u32,
}

/// An upload's outcome as the job's: a server that mishandles pipelining is found out (and the
/// upload sent again one command at a time, as the next try), a file that changed meanwhile
/// gives None, and a full server stops all further uploads.
pub(crate) async fn job_result(
    ctx: &WorkerContext,
    mut conn: Option<&mut Connection>,
    file: &FileUpload,
    stored_as: &str,
    before: Version,
    mut result: Result<Outcome, UploadError>,
    tried: Tried<'_>,
) -> Result<Option<Outcome>, JobError> {
    // A server that answers pipelined commands out of order (some process them concurrently)
    // fails in ways the same exchange one command at a time does not: find out, and if so, stop
    // pipelining to this server. Nothing is renamed before its own checks passed either way.
    // Sending it again is a try of its own: `--retries N` means N tries in all.
    let suspect = match &result {
        Err(UploadError::Remote(e)) if tried.pipelined && answers_a_batch(e) => Some(e.to_string()),
        _ => None,
    };
    let spare_try = *tried.attempt < ctx.retries;
    if let (Some(error), Some(conn)) = (
        suspect.filter(|_| spare_try && ctx.quirks.pipelining()),
        conn.as_deref_mut(),
    ) {
        *tried.attempt += 1;
        result = sequential(ctx, conn, file, stored_as, 0, before).await;
        if result.is_ok() {
            tracing::info!(%error, "the server mishandles pipelined commands; sending them one at a time");
            ctx.quirks.stop_pipelining();
        }
    }
    match result {
        Ok(outcome) => Ok(Some(outcome)),
        Err(UploadError::Changed) => Ok(None),
        Err(UploadError::Local(e)) => Err(JobError::Local(format!("cannot read local file: {e}"))),
        Err(UploadError::Remote(e)) => {
            if e.is_storage_full() {
                ctx.quirks.set_storage_full();
                if let Some(conn) = conn.filter(|_| ctx.atomic && !e.breaks_connection()) {
                    // Free what the partial file took; the final name was never touched.
                    let _ = conn.delete(stored_as).await;
                }
            }
            Err(e.into())
        }
    }
}

pub(crate) type Version = chain::Version;

/// The upload one command at a time (TLS, `--inplace`).
pub(crate) async fn sequential(
    ctx: &WorkerContext,
    conn: &mut Connection,
    file: &FileUpload,
    stored_as: &str,
    offset: u64,
    before: Version,
) -> Result<Outcome, UploadError> {
    if !ctx.atomic {
        backup::before_replacing(ctx, conn, &file.rel).await?;
    }
    let progress = ctx.sending(&file.rel, offset);
    let sent = conn
        .upload(
            stored_as,
            &file.local,
            offset,
            progress.as_ref(),
            ctx.bwlimit.as_deref(),
        )
        .await?;
    if local_version(&file.local).ok() != Some(before) {
        return Err(UploadError::Changed);
    }
    perms::set_file_mode(ctx, conn, &file.local, stored_as).await?;
    if ctx.atomic {
        commit_upload(ctx, conn, file, stored_as, before.0).await?;
    }
    let time_set = set_time(ctx, conn, &file.remote, file.mtime).await?;
    Ok(Outcome::Done {
        bytes: offset + sent,
        time_set,
    })
}

/// The atomic upload with its commands pipelined (see [`crate::ftp::chain`]).
pub(crate) fn pipelined_upload(
    ctx: &WorkerContext,
    conn: &Connection,
    file: &FileUpload,
    stored_as: &str,
    offset: u64,
    before: Version,
) -> chain::Upload {
    // Until this server's way of setting times is known, the first uploads find it out alone.
    let known = ctx.quirks.time_setting();
    chain::Upload {
        temp: stored_as.to_string(),
        target: file.remote.clone(),
        local: file.local.clone(),
        offset,
        expect_size: conn.features.size.then_some(before.0),
        set_time: known.setter().map(|how| how.command(file.mtime, stored_as)),
        version: before,
        chmod: perms::file_mode(ctx, &file.local),
        progress: ctx.sending(&file.rel, offset),
        limit: ctx.bwlimit.clone(),
    }
}

/// A pipelined upload's end as the upload's outcome, doing what the pipeline could not: a rename
/// the server refuses onto an existing file is done as delete-then-rename (see
/// [`backup::clear_place`]), and the time is set
/// afterwards when it could not travel with the upload.
pub(crate) async fn stored_outcome(
    ctx: &WorkerContext,
    conn: Option<&mut Connection>,
    file: &FileUpload,
    stored_as: &str,
    before: Version,
    stored: Result<chain::Stored, UploadError>,
) -> Result<Outcome, UploadError> {
    let stored = match (stored, conn) {
        (Ok(stored), conn) => (stored, conn),
        (Err(UploadError::Remote(e)), Some(conn)) if is_refused_rename(&e) => {
            // Servers that refuse to rename onto an existing file: delete (or back up), rename.
            backup::clear_place(ctx, conn, &file.rel).await?;
            conn.rename(stored_as, &file.remote).await?;
            let time_set = set_time(ctx, conn, &file.remote, file.mtime).await?;
            return Ok(Outcome::Done {
                bytes: before.0,
                time_set,
            });
        }
        (Err(e), _) => return Err(e),
    };
    let (stored, conn) = stored;
    perms::judge(ctx, stored.chmod)?;
    let time_set = match (stored.time_set, conn) {
        (Some(Ok(())), _) => true,
        (Some(Err(e)), _) if e.breaks_connection() => return Err(e.into()),
        (Some(Err(e)), _) => {
            // The file is safely stored; a time we could not set only costs a later re-upload.
            tracing::warn!(path = %file.remote, error = %e, "could not set the modification time");
            false
        }
        (None, Some(conn)) => set_time(ctx, conn, &file.remote, file.mtime).await?,
        (None, None) => false,
    };
    Ok(Outcome::Done {
        // The resumed part counts: the file is on the server whole.
        bytes: before.0.max(stored.sent),
        time_set,
    })
}

/// An error in a pipelined batch's replies (size check, rename, time) rather than in the
/// transfer itself: what a server that mishandles pipelining would cause.
fn answers_a_batch(e: &FtpError) -> bool {
    match e {
        FtpError::Reply { operation, .. } => ["SIZE", "RNFR", "RNTO"]
            .iter()
            .any(|c| operation.starts_with(c)),
        FtpError::SizeMismatch { .. } | FtpError::Garbled { .. } => true,
        _ => false,
    }
}

/// A rename refused for good (e.g. 553 when the target exists).
fn is_refused_rename(e: &FtpError) -> bool {
    matches!(e, FtpError::Reply { operation, code, .. } if operation.starts_with("RNTO") && (500..600).contains(code))
}

/// Checks the stored size where the server tells it, then renames the temporary file over the
/// target (deleting the target first on servers that refuse to rename onto a file), once the
/// file it replaces, or any file found there, is in the `--backup-dir`.
pub(crate) async fn commit_upload(
    ctx: &WorkerContext,
    conn: &mut Connection,
    file: &FileUpload,
    temp: &str,
    size: u64,
) -> Result<(), FtpError> {
    let remote = &file.remote;
    if let Some(stored) = conn.size(temp).await? {
        if stored != size {
            return Err(FtpError::SizeMismatch {
                operation: format!("STOR {remote}"),
                stored,
                expected: size,
            });
        }
    }
    if let Err(e) = backup::before_replacing(ctx, conn, &file.rel).await {
        // Nothing is replaced without its backup: the new copy goes.
        if !e.breaks_connection() {
            conn.delete(temp).await.ok();
        }
        return Err(e);
    }
    let renamed = match conn.rename(temp, remote).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_permanent() => match backup::clear_place(ctx, conn, &file.rel).await {
            Ok(()) => conn.rename(temp, remote).await,
            Err(cleared) => Err(cleared),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = &renamed {
        // The site keeps its old file rather than none, however the rename failed.
        backup::put_back(ctx, conn, &file.rel, e.breaks_connection()).await;
    }
    renamed
}

/// Sets the remote file's time to the local one, finding out once how this server does it.
async fn set_time(
    ctx: &WorkerContext,
    conn: &mut Connection,
    remote: &str,
    mtime: i64,
) -> Result<bool, FtpError> {
    let known = ctx.quirks.time_setting();
    let candidates: Vec<TimeSetter> = match known {
        TimeSetting::By(how) => vec![how],
        TimeSetting::Impossible => return Ok(false),
        TimeSetting::Unknown => TimeSetter::candidates(conn.features).to_vec(),
    };
    for how in candidates {
        match conn.set_mtime(remote, mtime, how).await {
            Ok(()) => {
                ctx.quirks.set_time_setting(TimeSetting::By(how));
                return Ok(true);
            }
            Err(e) if e.is_permanent() && known == TimeSetting::Unknown => continue,
            Err(e) if e.breaks_connection() => return Err(e),
            // The file is safely stored; a time we could not set only costs a later re-upload.
            Err(e) => {
                tracing::warn!(path = remote, error = %e, "could not set the modification time");
                return Ok(false);
            }
        }
    }
    tracing::info!("this server cannot set modification times; relying on the local record");
    ctx.quirks.set_time_setting(TimeSetting::Impossible);
    Ok(false)
}
