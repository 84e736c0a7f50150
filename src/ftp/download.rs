//! A file's bytes from the server (RETR, from an offset with REST) into a local file that the
//! caller opened and positioned: every wait on the network is bounded by the timeout, and the
//! bytes are counted as they arrive for whoever shows progress; with `--bwlimit` they are read
//! in slices, each taken from the run's bandwidth (without it, nothing changes). Where the local file lives and
//! what becomes of it is the caller's business (see `crate::engine::pull`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::data::{io_lost, Meter};
use super::error::{within, FtpError};
use super::{op, Connection};

/// Bytes read from the data connection at a time.
const READ_CHUNK: usize = 256 * 1024;

/// A download failed on the server's side or on the local one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    #[error(transparent)]
    Remote(#[from] FtpError),
    /// Writing the local file failed (a full disk, among others).
    #[error("cannot write the local file: {0}")]
    Local(std::io::Error),
}

impl Connection {
    /// Appends the remote file `path`, from byte `offset` on (REST), to `file`; returns the
    /// bytes received, also added to the meter's progress as they come, no faster than its
    /// limit allows. On a local write error the
    /// transfer is abandoned (its reply is read before the next command, so the connection
    /// stays usable).
    pub(crate) async fn download_to(
        &mut self,
        path: &str,
        offset: u64,
        file: &mut tokio::fs::File,
        meter: Meter<'_>,
    ) -> Result<u64, DownloadError> {
        self.keep_session_resumable().await?;
        let operation = op("RETR", path);
        if offset > 0 {
            let rest = self.stream.ftp.resume_transfer(offset as usize);
            within(self.timeout, op("REST", path), rest).await?;
        }
        let open = self.stream.ftp.retr_as_stream(path);
        let mut data = within(self.timeout, operation.clone(), open).await?;
        let mut chunk = vec![0u8; meter.chunk(READ_CHUNK)];
        let mut received = 0u64;
        loop {
            let read = async { data.read(&mut chunk).await.map_err(io_lost) };
            let n = within(self.timeout, operation.clone(), read).await?;
            if n == 0 {
                break;
            }
            // Taken once read: the next read waits until these bytes were due.
            meter.take(n).await;
            file.write_all(&chunk[..n])
                .await
                .map_err(DownloadError::Local)?;
            received += n as u64;
            meter.sent(n as u64);
        }
        within(self.timeout, operation, data.finish()).await?;
        file.flush().await.map_err(DownloadError::Local)?;
        Ok(received)
    }
}
