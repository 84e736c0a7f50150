//! A file's bytes over a passive data connection, from a blocking thread with sendfile(2) on
//! Linux: the bytes go from the page cache to the socket without passing through this process,
//! and each write waits at most the timeout.
//!
//! Whoever shows progress may pass a [`Sent`] counter with a transfer: the bytes are added to
//! it as they go (per sendfile(2) call, capped at [`SENDFILE_STEP`], or per buffer written).
//!
//! With `--bwlimit`, the bytes take from the run's [`Bandwidth`] before they go, in slices it
//! sizes (sendfile(2) calls included); without it, nothing here changes: no extra call, no
//! slicing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use suppaftp::tokio_rustls::client::TlsStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use super::bwlimit::{Allowance, Bandwidth};
use super::channel::{open_data, DataTls};
use super::error::{within, FtpError, UploadError};

/// The bytes of one transfer sent so far, for a progress display; the protocol only adds to it.
pub(crate) type Sent = Arc<AtomicU64>;

/// Adds `n` bytes sent to `progress`, if anyone watches.
fn add(progress: Option<&AtomicU64>, n: u64) {
    if let Some(counter) = progress {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What watches a transfer's bytes go: the progress counter, and the `--bwlimit` they take from.
#[derive(Clone, Copy)]
pub(crate) struct Meter<'a> {
    pub(crate) progress: Option<&'a AtomicU64>,
    pub(crate) limit: Option<&'a Bandwidth>,
}

impl Meter<'_> {
    /// How many bytes to write at once: `whole` without a limit, a slice of the rate with one.
    pub(super) fn chunk(&self, whole: usize) -> usize {
        self.limit
            .map_or(whole, |limit| whole.min(limit.slice() as usize))
    }

    /// Waits until `n` bytes may go, with a limit.
    pub(super) async fn take(&self, n: usize) {
        if let Some(limit) = self.limit {
            limit.take(n as u64).await;
        }
    }

    /// `n` bytes went.
    pub(super) fn sent(&self, n: u64) {
        add(self.progress, n);
    }
}

/// Where a transfer's bytes go: the passive address, how the data connection is secured, and
/// the transfer command (for messages).
#[derive(Clone, Copy)]
pub(crate) struct Destination<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) tls: Option<&'a DataTls>,
    pub(crate) command: &'a str,
}

/// Opens the data connection and sends the bytes of `local` from `offset` as soon as it is open
/// (the transfer command is on its way), then closes it; `size` is the file's size when its
/// upload began. Returns the bytes sent; `progress` counts them as they go.
///
/// On plain FTP the copy runs with sendfile(2) on Linux (see [`copy_to_socket`]): the bytes
/// never pass through this process; large files are copied on a blocking thread. Over TLS the
/// bytes go through the TLS stream from one buffer (see [`send_secure`]).
/// Each write waits at most `timeout` (the socket's send timeout); if this future is dropped
/// (the server refused the transfer), the data connection is shut down, which ends the copy.
/// With a `limit`, the bytes go no faster than it allows.
pub(crate) async fn send_file(
    local: &Path,
    offset: u64,
    size: u64,
    to: Destination<'_>,
    timeout: Duration,
    progress: Option<&Sent>,
    limit: Option<&Arc<Bandwidth>>,
) -> Result<u64, UploadError> {
    let command = to.command;
    let lost = |e: std::io::Error| {
        UploadError::Remote(FtpError::Connection {
            operation: command.to_string(),
            detail: e.to_string(),
        })
    };
    let data = match open_data(to.addr, command, to.tls, timeout).await? {
        Either::Left(plain) => plain,
        Either::Right(secured) => {
            let meter = Meter {
                progress: progress.map(|p| &**p),
                limit: limit.map(|l| &**l),
            };
            return send_secure(local, offset, size, command, secured, timeout, meter).await;
        }
    };
    let expected = size.saturating_sub(offset);
    #[cfg(target_os = "linux")]
    if expected <= INLINE_MAX {
        let progress = progress.map(|p| &**p);
        let pace = limit.map(|l| Allowance::new(l, expected));
        return send_inline(local, offset, command, data, timeout, progress, pace).await;
    }
    let data = data.into_std().map_err(lost)?;
    data.set_nonblocking(false).map_err(lost)?;
    data.set_write_timeout(Some(timeout)).map_err(lost)?;
    let _guard = ShutdownOnDrop(data.try_clone().map_err(lost)?);
    let local = PathBuf::from(local);
    let progress = progress.cloned();
    let limit = limit.cloned();
    let copy = tokio::task::spawn_blocking(move || {
        let pace = limit.as_deref().map(|l| Allowance::new(l, expected));
        copy_file(&local, offset, data, progress.as_deref(), pace)
    });
    match copy.await {
        Ok(Ok(sent)) => Ok(sent),
        Ok(Err(CopyError::Local(e))) => Err(UploadError::Local(e)),
        Ok(Err(CopyError::Socket(e))) if is_timeout(&e) => Err(FtpError::Timeout {
            operation: command.to_string(),
            secs: timeout.as_secs(),
        }
        .into()),
        Ok(Err(CopyError::Socket(e))) => Err(lost(e)),
        Err(e) => Err(lost(std::io::Error::other(e))),
    }
}

/// Over TLS: a small file read whole and written through the TLS stream (which cuts it into
/// records), a large one through one reused buffer; then the TLS close and the connection's.
/// A file that cannot be read closes the connection at once: the server ends the transfer.
async fn send_secure(
    local: &Path,
    offset: u64,
    size: u64,
    command: &str,
    mut data: TlsStream<TcpStream>,
    timeout: Duration,
    meter: Meter<'_>,
) -> Result<u64, UploadError> {
    use tokio::io::AsyncSeekExt;
    let sent = if size.saturating_sub(offset) <= INLINE_MAX {
        match read_at(local, offset) {
            Ok(bytes) => write_metered(&mut data, &bytes, meter, timeout, command)
                .await
                .map(|()| bytes.len() as u64)
                .map_err(UploadError::from),
            Err(e) => Err(UploadError::Local(e)),
        }
    } else {
        let open = async {
            let mut file = tokio::fs::File::open(local).await?;
            file.seek(std::io::SeekFrom::Start(offset)).await?;
            Ok(file)
        };
        match open.await {
            Ok(mut file) => send_bytes(&mut file, &mut data, timeout, command, meter).await,
            Err(e) => Err(UploadError::Local(e)),
        }
    };
    let close = async {
        data.shutdown().await.map_err(io_lost)?;
        // Read until the server closes: what it sent (TLS 1.3 tickets, for the next data
        // connections) is taken in, and no unread byte makes the close a reset (a 426). How it
        // closes (some servers send no close_notify) is for its 226 to judge.
        let mut scrap = [0u8; 1024];
        while matches!(data.read(&mut scrap).await, Ok(n) if n > 0) {}
        Ok::<(), suppaftp::FtpError>(())
    };
    match (sent, within(timeout, command, close).await) {
        (Ok(sent), Ok(())) => Ok(sent),
        (Ok(_), Err(e)) => Err(e.into()),
        (Err(e), _) => Err(e),
    }
}

/// The local file's bytes from `offset` on.
fn read_at(local: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = open_at(local, offset)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(bytes)
}

/// Size of the buffer used to stream a file to the data connection.
const UPLOAD_CHUNK: usize = 256 * 1024;

pub(crate) fn io_lost(e: std::io::Error) -> suppaftp::FtpError {
    suppaftp::FtpError::ConnectionError(e)
}

/// Copies `file` to the data connection `data`; every write is bounded by `timeout` (a stalled
/// server must not hang the upload). Returns the bytes sent, counted by `meter` per chunk (a
/// slice of the limit, if any).
pub(crate) async fn send_bytes<W: tokio::io::AsyncWrite + Unpin>(
    file: &mut tokio::fs::File,
    data: &mut W,
    timeout: Duration,
    operation: &str,
    meter: Meter<'_>,
) -> Result<u64, UploadError> {
    let mut buf = vec![0u8; meter.chunk(UPLOAD_CHUNK)];
    let mut sent = 0u64;
    loop {
        let n = file.read(&mut buf).await.map_err(UploadError::Local)?;
        if n == 0 {
            return Ok(sent);
        }
        write_metered(data, &buf[..n], meter, timeout, operation).await?;
        sent += n as u64;
    }
}

/// Writes `bytes` to `data`, each write within `timeout`: at once without a limit, else in
/// slices of it, each waiting its turn. The bytes are counted as they go.
async fn write_metered<W: tokio::io::AsyncWrite + Unpin>(
    data: &mut W,
    bytes: &[u8],
    meter: Meter<'_>,
    timeout: Duration,
    operation: &str,
) -> Result<(), FtpError> {
    for piece in bytes.chunks(meter.chunk(bytes.len()).max(1)) {
        meter.take(piece.len()).await;
        let write = async { data.write_all(piece).await.map_err(io_lost) };
        within(timeout, operation, write).await?;
        meter.sent(piece.len() as u64);
    }
    Ok(())
}

/// Files up to this size are sent from the worker's own task: opening a local file and handing
/// its pages to the socket takes microseconds, less than a trip to a blocking thread, and the
/// socket takes them in a few writes.
const INLINE_MAX: u64 = 1 << 20;

/// A small file, with sendfile(2) on the non-blocking socket, waiting for it to take more (and,
/// with a limit, for the bytes it allows: `pace`).
#[cfg(target_os = "linux")]
async fn send_inline(
    local: &Path,
    offset: u64,
    command: &str,
    mut data: TcpStream,
    timeout: Duration,
    progress: Option<&AtomicU64>,
    mut pace: Option<Allowance<'_>>,
) -> Result<u64, UploadError> {
    let lost = |e: std::io::Error| -> UploadError {
        FtpError::Connection {
            operation: command.to_string(),
            detail: e.to_string(),
        }
        .into()
    };
    let file = match open_at(local, offset) {
        Ok(file) => file,
        Err(e) => {
            // The server ends the transfer (with an empty file) rather than wait for one.
            let _ = data.shutdown().await;
            return Err(UploadError::Local(e));
        }
    };
    let mut sent = 0u64;
    loop {
        let count = match &mut pace {
            Some(pace) => pace.ready().await,
            None => INLINE_MAX as usize,
        };
        let ready = async {
            data.writable()
                .await
                .map_err(suppaftp::FtpError::ConnectionError)
        };
        within(timeout, command.to_string(), ready).await?;
        let step = data.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::fs::sendfile(&data, &file, None, count).map_err(Into::into)
        });
        match step {
            Ok(0) => break,
            Ok(n) => {
                sent += n as u64;
                add(progress, n as u64);
                if let Some(pace) = &mut pace {
                    pace.moved(n as u64);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if sent == 0 && matches!(e.raw_os_error(), Some(22 | 38)) => {
                // EINVAL, ENOSYS: no sendfile from this file system; through a buffer then.
                let bytes = std::fs::read(local).map_err(UploadError::Local)?;
                let rest = bytes.get(offset as usize..).unwrap_or_default();
                let limit = pace.take().map(|pace| pace.limit());
                let meter = Meter { progress, limit };
                write_metered(&mut data, rest, meter, timeout, command).await?;
                sent = rest.len() as u64;
                break;
            }
            Err(e) => return Err(lost(e)),
        }
    }
    let close = async {
        data.shutdown()
            .await
            .map_err(suppaftp::FtpError::ConnectionError)
    };
    within(timeout, command.to_string(), close).await?;
    Ok(sent)
}

enum CopyError {
    /// The local file could not be opened (nothing was sent).
    Local(std::io::Error),
    /// Sending failed (or, rarely, reading the file after it opened).
    Socket(std::io::Error),
}

/// Copies the local file from `offset` to the data connection and closes its sending side. A
/// file that cannot be opened closes the connection at once, so the server ends the transfer
/// (with an empty file) rather than waiting for one.
fn copy_file(
    local: &std::path::Path,
    offset: u64,
    mut data: std::net::TcpStream,
    progress: Option<&AtomicU64>,
    pace: Option<Allowance<'_>>,
) -> Result<u64, CopyError> {
    let mut file = match open_at(local, offset) {
        Ok(file) => file,
        Err(e) => {
            let _ = data.shutdown(std::net::Shutdown::Write);
            return Err(CopyError::Local(e));
        }
    };
    let sent = copy_to_socket(&mut file, &mut data, progress, pace).map_err(CopyError::Socket)?;
    data.shutdown(std::net::Shutdown::Write)
        .map_err(CopyError::Socket)?;
    Ok(sent)
}

/// The most one sendfile(2) call sends when someone watches the progress: a 3 GB file then
/// moves the counter every few MiB instead of once per GiB.
const SENDFILE_STEP: usize = 8 << 20;

/// Sends the rest of `file` to `data`: with sendfile(2) on Linux (the bytes go from the page
/// cache to the socket without passing through this process), else through a buffer; the bytes
/// are added to `progress` as they go. With a limit, each call sends what `pace` allows.
fn copy_to_socket(
    file: &mut std::fs::File,
    data: &mut std::net::TcpStream,
    progress: Option<&AtomicU64>,
    mut pace: Option<Allowance<'_>>,
) -> std::io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        let step = if progress.is_some() {
            SENDFILE_STEP
        } else {
            1 << 30
        };
        let mut sent = 0u64;
        loop {
            let step = match &mut pace {
                Some(pace) => pace.ready_blocking(),
                None => step,
            };
            match rustix::fs::sendfile(&*data, &*file, None, step) {
                Ok(0) => return Ok(sent),
                Ok(n) => {
                    sent += n as u64;
                    add(progress, n as u64);
                    if let Some(pace) = &mut pace {
                        pace.moved(n as u64);
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                // A file system without sendfile support: nothing was sent yet.
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) if sent == 0 => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let limit = pace.take().map(|pace| pace.limit());
    let mut buf = vec![0u8; limit.map_or(UPLOAD_CHUNK, |l| l.slice() as usize)];
    let mut sent = 0u64;
    loop {
        let n = match std::io::Read::read(file, &mut buf) {
            Ok(0) => return Ok(sent),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(limit) = limit {
            limit.take_blocking(n as u64);
        }
        std::io::Write::write_all(data, &buf[..n])?;
        sent += n as u64;
        add(progress, n as u64);
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Shuts a data connection down when dropped, which ends a copy still writing to it.
struct ShutdownOnDrop(std::net::TcpStream);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// The local file, positioned at `offset`.
fn open_at(local: &std::path::Path, offset: u64) -> std::io::Result<std::fs::File> {
    use std::io::Seek;
    let mut file = std::fs::File::open(local)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local file of `len` bytes.
    fn file_of(len: usize) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &vec![9u8; len]).unwrap();
        file
    }

    #[test]
    fn a_sendfile_copy_moves_the_counter_while_the_file_goes() {
        let len = 4 * SENDFILE_STEP + 123;
        let local = file_of(len);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counter = Arc::new(AtomicU64::new(0));
        let watched = Arc::clone(&counter);
        let reader = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            let mut first = vec![0u8; SENDFILE_STEP + 1];
            std::io::Read::read_exact(&mut peer, &mut first).unwrap();
            // More than the socket buffers hold is still to come: the copy is under way.
            let waited = std::time::Instant::now();
            let mut midway = watched.load(Ordering::Relaxed);
            while midway == 0 && waited.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
                midway = watched.load(Ordering::Relaxed);
            }
            let mut rest = Vec::new();
            std::io::Read::read_to_end(&mut peer, &mut rest).unwrap();
            (midway, first.len() + rest.len())
        });
        let data = std::net::TcpStream::connect(addr).unwrap();
        let sent = copy_file(local.path(), 0, data, Some(&counter), None);
        assert!(matches!(sent, Ok(n) if n == len as u64));
        assert_eq!(counter.load(Ordering::Relaxed), len as u64);
        let (midway, received) = reader.join().unwrap();
        assert_eq!(received, len);
        assert!(
            (1..len as u64).contains(&midway),
            "the counter moved only at the end: {midway}"
        );
    }

    #[tokio::test]
    async fn a_buffered_copy_adds_each_chunk_to_the_counter() {
        let len = 3 * UPLOAD_CHUNK + 7;
        let local = file_of(len);
        let mut file = tokio::fs::File::open(local.path()).await.unwrap();
        let mut out = Vec::new();
        let counter = AtomicU64::new(0);
        let timeout = Duration::from_secs(5);
        let meter = Meter {
            progress: Some(&counter),
            limit: None,
        };
        let sent = send_bytes(&mut file, &mut out, timeout, "STOR x", meter).await;
        assert!(matches!(sent, Ok(n) if n == len as u64));
        assert_eq!(counter.load(Ordering::Relaxed), len as u64);
        assert_eq!(out.len(), len);
    }

    /// The path of every TLS upload: under `--bwlimit`, a chunk waits for its share.
    #[tokio::test(start_paused = true)]
    async fn a_buffered_copy_under_a_limit_goes_at_its_rate() {
        let len = 3 << 20;
        let local = file_of(len);
        let mut file = tokio::fs::File::open(local.path()).await.unwrap();
        let mut out = Vec::new();
        let counter = AtomicU64::new(0);
        let limit = Bandwidth::new(1 << 20);
        let meter = Meter {
            progress: Some(&counter),
            limit: Some(&limit),
        };
        let start = tokio::time::Instant::now();
        let sent = send_bytes(&mut file, &mut out, Duration::from_secs(5), "STOR x", meter).await;
        assert!(matches!(sent, Ok(n) if n == len as u64));
        assert_eq!(
            (out.len(), counter.load(Ordering::Relaxed)),
            (len, len as u64)
        );
        // 3 MiB at 1 MiB/s, less the first burst (a tenth of a second).
        let took = start.elapsed().as_secs_f64();
        assert!((2.89..=2.91).contains(&took), "took {took} s");
    }
}
