//! One download on one worker's connection: RETR into a temporary file beside the final name
//! (resumed with REST where a large file's earlier try left its beginning), the size checked
//! against the listing, the remote time given to the file, fsync, and the rename into place (on
//! a blocking thread, while the connection goes on with the next download). A file at its final
//! name is always complete.

use std::path::{Path, PathBuf};

use super::plan::Download;
use crate::engine::job::{JobError, Outcome, WorkerContext};
use crate::ftp::download::DownloadError;
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

/// One try at downloading `file`.
pub(crate) async fn download_job(
    ctx: &WorkerContext,
    conn: &mut Connection,
    file: &Download,
) -> Result<Outcome, JobError> {
    let at = paths(&ctx.local_root, file)?;
    let resumable = file.size >= RESUME_MIN_SIZE && file.exact_time;
    let (std_file, mut offset) =
        write::open_temp(&at.temp, resumable).map_err(|e| local_error(file, &at, e))?;
    if offset > file.size {
        // Longer than the file: not the beginning of this version of it.
        std_file.set_len(0).map_err(|e| local_error(file, &at, e))?;
        offset = 0;
    }
    if offset > 0 {
        tracing::info!(path = %file.rel, kept = offset, "resuming the interrupted download");
    }
    let mut handle = tokio::fs::File::from_std(std_file);
    let remote = ctx.target.remote_path(&file.rel);
    let progress = ctx.sending(&file.rel, offset);
    let received = if offset == file.size {
        Ok(0)
    } else {
        let most = file.size - offset;
        let meter = Meter {
            progress: progress.as_deref(),
            limit: ctx.bwlimit.as_deref(),
        };
        let pipelined = ctx.quirks.pipelining();
        let received = conn
            .download_to(&remote, offset, &mut handle, meter, pipelined, most)
            .await;
        if let (true, Err(DownloadError::Remote(e @ FtpError::Garbled { .. }))) =
            (pipelined, &received)
        {
            // Retried one command at a time; so is every later download.
            tracing::info!(error = %e, "the server mishandles pipelined commands; sending them one at a time");
            ctx.quirks.stop_pipelining();
        }
        received
    };
    let received = match received {
        Ok(n) => n,
        Err(DownloadError::Local(e)) => return Err(local_error(file, &at, e)),
        Err(DownloadError::Remote(e)) => {
            if !resumable || matches!(e, FtpError::LongerThanListed { .. }) {
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
