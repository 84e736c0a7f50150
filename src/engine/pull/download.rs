//! One download on one worker's connection: RETR into a temporary file beside the final name
//! (resumed with REST where a large file's earlier try left its beginning), the size checked
//! against the listing, the remote time given to the file, fsync, and the rename into place (on
//! a blocking thread, while the connection goes on with the next download). A file at its final
//! name is always complete.

use std::path::{Path, PathBuf};

use super::plan::Download;
use crate::engine::job::{JobError, Outcome, WorkerContext};
use crate::ftp::chain::Signs;
use crate::ftp::download::{Behind, DownloadError};
use crate::ftp::Meter;
use crate::ftp::{Connection, FtpError};
use crate::local::write;

/// Files at least this large keep what an interrupted try downloaded, and the next try (in
/// this run or the next) asks for the rest only: below it, starting over costs less. The same
/// threshold as uploads.
pub(crate) const RESUME_MIN_SIZE: u64 = 8 * 1024 * 1024;

/// Where a download goes: its temporary file and its final name.
struct Paths {
    temp: PathBuf,
    fin: PathBuf,
}

/// The temporary and final paths of `file` under `root`; refused when a folder on the way is
/// not a real folder (a symbolic link, a file).
fn paths(root: &Path, file: &Download) -> Result<Paths, JobError> {
    let fin = write::checked_path(root, &file.rel).map_err(|e| JobError::Local(e.to_string()))?;
    let name = file.rel.rsplit('/').next().unwrap_or(&file.rel);
    let temp = fin.with_file_name(write::temp_name(name, file.size, file.mtime));
    Ok(Paths { temp, fin })
}

/// Whether a try at `file` keeps what an earlier try downloaded (see [`RESUME_MIN_SIZE`]; only
/// with a remote time known to the second: a minute-precise one could splice two versions).
fn resumable(file: &Download) -> bool {
    file.size >= RESUME_MIN_SIZE && file.exact_time
}

/// Whether `file` may be downloaded in a chain (see [`crate::ftp::download::Behind`]): a whole
/// file that needs a transfer (an empty one needs none; a resumable one may start part-way).
pub(crate) fn chainable(file: &Download) -> bool {
    file.size > 0 && !resumable(file)
}

/// A download's local side: its paths, its temporary file, and where its bytes start.
struct Local {
    at: Paths,
    handle: tokio::fs::File,
    offset: u64,
}

/// Opens the temporary file of `file` (kept from an earlier try when resumable).
fn prepare(ctx: &WorkerContext, file: &Download) -> Result<Local, JobError> {
    let at = paths(&ctx.local_root, file)?;
    let (std_file, mut offset) =
        write::open_temp(&at.temp, resumable(file)).map_err(|e| local_error(file, &at, e))?;
    if offset > file.size {
        // Longer than the file: not the beginning of this version of it.
        std_file.set_len(0).map_err(|e| local_error(file, &at, e))?;
        offset = 0;
    }
    if offset > 0 {
        tracing::info!(path = %file.rel, kept = offset, "resuming the interrupted download");
    }
    let handle = tokio::fs::File::from_std(std_file);
    Ok(Local { at, handle, offset })
}

/// One try at downloading `file`.
pub(crate) async fn download_job(
    ctx: &WorkerContext,
    conn: &mut Connection,
    file: &Download,
) -> Result<Outcome, JobError> {
    let mut local = prepare(ctx, file)?;
    let offset = local.offset;
    let remote = ctx.target.remote_path(&file.rel);
    let progress = ctx.sending(&file.rel, offset);
    let received = if offset == file.size {
        Ok(0)
    } else {
        let meter = Meter {
            progress: progress.as_deref(),
            limit: ctx.bwlimit.as_deref(),
        };
        let pipelined = ctx.quirks.pipelining();
        let most = file.size - offset;
        let received = conn
            .download_to(&remote, offset, &mut local.handle, meter, pipelined, most)
            .await;
        learn(ctx, pipelined, &received);
        received
    };
    conclude(file, local, received).await
}

/// How a download in a chain went (see [`crate::ftp::download::Chained`]).
pub(crate) struct Linked {
    pub(crate) result: Result<Outcome, JobError>,
    pub(crate) signs: Signs,
    pub(crate) next_sent: bool,
    pub(crate) untried: bool,
}

/// One try at downloading `file` (a [`chainable`] one) in a chain: its `PASV` and `RETR` already
/// sent when `sent`, what `behind` says written behind them.
pub(crate) async fn download_link(
    ctx: &WorkerContext,
    conn: &mut Connection,
    file: &Download,
    sent: bool,
    behind: impl FnOnce() -> Behind,
) -> Linked {
    let mut local = match prepare(ctx, file) {
        Ok(local) => local,
        // Replies still due to a download sent ahead: the connection cannot go on.
        Err(e) => {
            return Linked {
                result: Err(e),
                signs: Signs {
                    out_of_step: sent,
                    ..Signs::default()
                },
                next_sent: false,
                untried: false,
            }
        }
    };
    let remote = ctx.target.remote_path(&file.rel);
    let progress = ctx.sending(&file.rel, 0);
    let meter = Meter {
        progress: progress.as_deref(),
        limit: ctx.bwlimit.as_deref(),
    };
    let handle = &mut local.handle;
    let chained = conn
        .download_chained(&remote, sent, behind, handle, meter, file.size)
        .await;
    learn(ctx, true, &chained.received);
    Linked {
        result: conclude(file, local, chained.received).await,
        signs: chained.signs,
        next_sent: chained.next_sent,
        untried: chained.untried,
    }
}

/// A server that answered pipelined commands out of step gets them one at a time from now on.
fn learn(ctx: &WorkerContext, pipelined: bool, received: &Result<u64, DownloadError>) {
    if let (true, Err(DownloadError::Remote(e @ FtpError::Garbled { .. }))) = (pipelined, received)
    {
        // Retried one command at a time; so is every later download.
        tracing::info!(error = %e, "the server mishandles pipelined commands; sending them one at a time");
        ctx.quirks.stop_pipelining();
    }
}

/// What the bytes received make of a try: the file put in place (on a blocking thread) when
/// they are all there, or the failure (the temporary file kept only for a resumable file).
async fn conclude(
    file: &Download,
    local: Local,
    received: Result<u64, DownloadError>,
) -> Result<Outcome, JobError> {
    let Local { at, handle, offset } = local;
    let received = match received {
        Ok(n) => n,
        Err(DownloadError::Local(e)) => return Err(local_error(file, &at, e)),
        Err(DownloadError::Remote(e)) => {
            if !resumable(file) || matches!(e, FtpError::LongerThanListed { .. }) {
                let _ = std::fs::remove_file(&at.temp);
            }
            return Err(JobError::Remote(e));
        }
    };
    let std_file = handle.into_std().await;
    let total = offset + received;
    if total != file.size {
        let _ = std::fs::remove_file(&at.temp);
        return Err(JobError::Local(format!(
            "the server sent {total} bytes where its listing said {} (did the file change?); not put in place, the next run fetches it again",
            file.size
        )));
    }
    // Off the connection's path: it starts the next download while this one is synced.
    let file = file.clone();
    Ok(Outcome::Finishing(tokio::task::spawn_blocking(move || {
        write::put_in_place(std_file, &at.temp, &at.fin, file.mtime)
            .map_err(|e| local_error(&file, &at, e))?;
        Ok(Outcome::Done {
            bytes: received,
            time_set: file.mtime.is_some(),
        })
    })))
}

/// A local failure: the temporary file goes (a full disk must not stay fuller), and a full disk
/// is told apart, since it stops every further download.
fn local_error(file: &Download, at: &Paths, e: std::io::Error) -> JobError {
    let _ = std::fs::remove_file(&at.temp);
    if write::is_disk_full(&e) {
        JobError::DiskFull(format!(
            "the local disk is full ({e}) while writing {}; its partial download was removed",
            at.fin.display()
        ))
    } else {
        JobError::Local(format!("cannot write {}: {e}", file.rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_removes_the_partial_file_and_names_the_final_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = Download {
            rel: "sub/big.iso".into(),
            size: 10,
            mtime: None,
            exact_time: false,
        };
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let at = paths(dir.path(), &file).unwrap();
        std::fs::write(&at.temp, "part").unwrap();
        let enospc = std::io::Error::from_raw_os_error(28);
        let JobError::DiskFull(why) = local_error(&file, &at, enospc) else {
            panic!("a full disk is told apart");
        };
        assert!(why.contains("sub/big.iso") && why.contains("full"), "{why}");
        assert!(!at.temp.exists(), "the partial download is removed");
        let other = std::io::Error::from_raw_os_error(13);
        assert!(matches!(local_error(&file, &at, other), JobError::Local(_)));
    }
}
