//! A file's bytes from the server (RETR, from an offset with REST) into a local file that the
//! caller opened and positioned: every wait on the network is bounded by the timeout, and the
//! bytes are counted as they arrive for whoever shows progress; with `--bwlimit` they are read
//! in slices, each taken from the run's bandwidth (without it, nothing changes). Where the local file lives and
//! what becomes of it is the caller's business (see `crate::engine::pull`).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::data::{io_lost, Meter};
use super::error::{within, FtpError};
use super::{op, Connection};

mod chained;

pub(crate) use chained::Behind;

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
    /// limit allows. More than `most` bytes end it with [`FtpError::LongerThanListed`] (a server
    /// must not fill the disk). `pipelined` (the server takes pipelined commands, as far as the
    /// run knows) sends PASV and RETR together; a server that then answers out of step gives
    /// [`FtpError::Garbled`]. On a local write error the transfer is abandoned (its reply is
    /// read before the next command, so the connection stays usable).
    pub(crate) async fn download_to(
        &mut self,
        path: &str,
        offset: u64,
        file: &mut tokio::fs::File,
        meter: Meter<'_>,
        pipelined: bool,
        most: u64,
    ) -> Result<u64, DownloadError> {
        if offset == 0 && pipelined && self.pipelining {
            // PASV and RETR in one write, the data connection opened while the 150 comes and
            // half-closed at once: a chain of one (see `chained`).
            let alone = || Behind::Nothing;
            let chained = self.download_chained(path, false, alone, file, meter, most);
            return chained.await.received;
        }
        self.keep_session_resumable().await?;
        let operation = op("RETR", path);
        let timeout = self.timeout;
        if offset > 0 {
            let rest = self.stream.ftp.resume_transfer(offset as usize);
            within(timeout, op("REST", path), rest).await?;
        }
        let open = self.stream.ftp.retr_as_stream(path);
        let mut data = within(timeout, operation.clone(), open).await?;
        let received = receive(&mut data, file, meter, timeout, &operation, (offset, most)).await?;
        within(timeout, operation, data.finish()).await?;
        file.flush().await.map_err(DownloadError::Local)?;
        Ok(received)
    }
}

/// Reads `data` to its end into `file`; returns the bytes received, each counted and taken from
/// the meter's limit (see [`Connection::download_to`]).
async fn receive(
    data: &mut (impl AsyncRead + Unpin),
    file: &mut tokio::fs::File,
    meter: Meter<'_>,
    timeout: Duration,
    operation: &str,
    (offset, most): (u64, u64),
) -> Result<u64, DownloadError> {
    let mut chunk = vec![0u8; meter.chunk(READ_CHUNK)];
    let mut received = 0u64;
    loop {
        let read = async { data.read(&mut chunk).await.map_err(io_lost) };
        let n = within(timeout, operation, read).await?;
        if n == 0 {
            return Ok(received);
        }
        if received + n as u64 > most {
            let listed = offset + most;
            let operation = operation.to_string();
            return Err(FtpError::LongerThanListed { operation, listed }.into());
        }
        // Taken once read: the next read waits until these bytes were due.
        meter.take(n).await;
        file.write_all(&chunk[..n])
            .await
            .map_err(DownloadError::Local)?;
        received += n as u64;
        meter.sent(n as u64);
    }
}
