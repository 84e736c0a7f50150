//! `--chmod` and `--perms` in a run: the `SITE CHMOD` each uploaded file gets (on its temporary
//! name, before the rename that keeps it; after the upload with `--inplace`) and each folder
//! ftpsync creates gets after its `MKD`. A server that refuses it gets one warning for the run
//! and no more `SITE CHMOD` on any connection: the files are still uploaded. The modes
//! themselves come from [`crate::chmod`].

use std::path::Path;

use crate::engine::job::WorkerContext;
use crate::ftp::{Connection, FtpError, PathCommand};

/// The mode to give the upload of the local file `local`; None when none is to be sent (no
/// option for files, or the server refuses modes).
pub(crate) fn file_mode(ctx: &WorkerContext, local: &Path) -> Option<u32> {
    let modes = ctx.modes.as_ref()?;
    if ctx.quirks.chmod_refused() {
        return None;
    }
    modes.mode_of(local)
}

/// Gives the uploaded file stored at `remote` the mode of `local`; Err only when the
/// connection broke (a refusal is reported by [`judge`]).
pub(crate) async fn set_file_mode(
    ctx: &WorkerContext,
    conn: &mut Connection,
    local: &Path,
    remote: &str,
) -> Result<(), FtpError> {
    match file_mode(ctx, local) {
        Some(mode) => judge(ctx, Some(conn.site_chmod(remote, mode).await)),
        None => Ok(()),
    }
}

/// Creates the folder `rel` (relative to the root) and gives it its mode.
pub(crate) async fn mkdir(
    ctx: &WorkerContext,
    conn: &mut Connection,
    rel: &str,
) -> Result<(), FtpError> {
    let remote = ctx.target.remote_path(rel);
    conn.mkdir(&remote).await?;
    set_file_mode(ctx, conn, &ctx.local_root.join(rel), &remote).await
}

/// Gives the folders a batch created their modes, in one batch too: `outcomes` pairs each
/// command of the batch (its path relative to the root) with its outcome.
pub(crate) async fn folders_made<'a>(
    ctx: &WorkerContext,
    conn: &mut Connection,
    outcomes: impl Iterator<Item = (&'a (PathCommand, String), &'a Result<(), FtpError>)>,
) {
    if ctx.modes.is_none() {
        return;
    }
    let chmods: Vec<(PathCommand, String)> = outcomes
        .filter(|((command, _), outcome)| *command == PathCommand::Mkd && outcome.is_ok())
        .filter_map(|((_, rel), _)| {
            let mode = file_mode(ctx, &ctx.local_root.join(rel))?;
            Some((PathCommand::SiteChmod(mode), ctx.target.remote_path(rel)))
        })
        .collect();
    for outcome in conn.run_many(&chmods).await {
        // A broken connection shows in the next command, which is tried again on a new one.
        if judge(ctx, Some(outcome)).is_err() {
            return;
        }
    }
}

/// What a `SITE CHMOD` did, when one was sent: a refusal is the one warning of the run (the
/// first one) and ends `SITE CHMOD` on every connection; Err only when the connection broke.
pub(crate) fn judge(
    ctx: &WorkerContext,
    outcome: Option<Result<(), FtpError>>,
) -> Result<(), FtpError> {
    match outcome {
        Some(Err(e)) if e.breaks_connection() => Err(e),
        Some(Err(e)) => {
            if ctx.quirks.refuse_chmod() {
                tracing::warn!(
                    "the server refused to set a mode ({e}): files and folders are uploaded \
                     without the modes --chmod and --perms ask for"
                );
            }
            Ok(())
        }
        Some(Ok(())) | None => Ok(()),
    }
}
