//! Small remote files held in memory: a download (RETR) that stops at a cap and a deadline,
//! so that a hostile or broken server cannot make ftpsync take unbounded memory or time, and an
//! upload (STOR) of bytes already in memory. Used for ftpsync's own files on the server (the
//! `--checksum` manifest); the user's files go through [`super::data`] and [`super::chain`].

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::data::io_lost;
use super::error::{within, FtpError};
use super::{op, Connection};

/// Bytes read from the data connection at a time.
const READ_CHUNK: usize = 64 * 1024;

impl Connection {
    /// The content of the remote file `path`, at most `cap` bytes: a longer file fails with
    /// [`FtpError::TooLarge`] (and leaves the connection unusable: the transfer is abandoned).
    /// Every wait on the network is bounded by the timeout.
    pub(crate) async fn download_capped(
        &mut self,
        path: &str,
        cap: u64,
    ) -> Result<Vec<u8>, FtpError> {
        self.keep_session_resumable().await?;
        let operation = op("RETR", path);
        let open = self.stream.ftp.retr_as_stream(path);
        let mut data = within(self.timeout, operation.clone(), open).await?;
        let timeout = self.timeout;
        // Each read waits at most the timeout, and the whole download at most the listing
        // deadline: a server trickling a byte now and then must not hold the run for days.
        let whole = async {
            let mut bytes = Vec::new();
            let mut chunk = vec![0u8; READ_CHUNK];
            loop {
                let read = async { data.read(&mut chunk).await.map_err(io_lost) };
                let n = within(timeout, operation.clone(), read).await?;
                if n == 0 {
                    break;
                }
                if (bytes.len() + n) as u64 > cap {
                    // Dropped unfinished: the server's reply to RETR is never read.
                    return Err(FtpError::TooLarge {
                        operation: operation.clone(),
                        cap,
                    });
                }
                bytes.extend_from_slice(&chunk[..n]);
            }
            Ok::<_, FtpError>(bytes)
        };
        let deadline = self.listing_limits.deadline;
        let bytes = within(deadline, operation.clone(), whole).await?;
        within(self.timeout, operation, data.finish()).await?;
        Ok(bytes)
    }

    /// Stores `bytes` as the remote file `path` (STOR, straight to that name: the caller picks
    /// a temporary name and renames it into place after checking the size).
    pub(crate) async fn upload_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<(), FtpError> {
        self.keep_session_resumable().await?;
        let operation = op("STOR", path);
        let open = self.stream.ftp.put_with_stream(path);
        let mut data = within(self.timeout, operation.clone(), open).await?;
        for chunk in bytes.chunks(READ_CHUNK) {
            let write = async { data.write_all(chunk).await.map_err(io_lost) };
            within(self.timeout, operation.clone(), write).await?;
        }
        within(self.timeout, operation, data.finish()).await
    }
}
