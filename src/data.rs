//! A file's bytes over a passive data connection, from a blocking thread with sendfile(2) on
//! Linux: the bytes go from the page cache to the socket without passing through this process,
//! and each write waits at most the timeout.

use std::net::SocketAddr;
use std::time::Duration;

use crate::chain::Upload;
use crate::ftp::{FtpError, UploadError};
use crate::pipeline::connect;

/// Opens the data connection and sends the file's bytes as soon as it is open (the transfer
/// command is on its way), then closes it. Returns the bytes sent.
///
/// The copy runs on a blocking thread with sendfile(2) on Linux (see [`copy_to_socket`]): the
/// bytes never pass through this process.
/// Each write waits at most `timeout` (the socket's send timeout); if this future is dropped
/// (the server refused the transfer), the data connection is shut down, which ends the copy.
pub async fn send_file(
    up: &Upload,
    command: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<u64, UploadError> {
    let lost = |e: std::io::Error| {
        UploadError::Remote(FtpError::Connection {
            operation: command.to_string(),
            detail: e.to_string(),
        })
    };
    let data = connect(addr, command, timeout)
        .await?
        .into_std()
        .map_err(lost)?;
    data.set_nonblocking(false).map_err(lost)?;
    data.set_write_timeout(Some(timeout)).map_err(lost)?;
    let _guard = ShutdownOnDrop(data.try_clone().map_err(lost)?);
    let (local, offset) = (up.local.clone(), up.offset);
    let copy = tokio::task::spawn_blocking(move || copy_file(&local, offset, data));
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
) -> Result<u64, CopyError> {
    use std::io::Seek;
    let opened = std::fs::File::open(local).and_then(|mut file| {
        file.seek(std::io::SeekFrom::Start(offset))?;
        Ok(file)
    });
    let mut file = match opened {
        Ok(file) => file,
        Err(e) => {
            let _ = data.shutdown(std::net::Shutdown::Write);
            return Err(CopyError::Local(e));
        }
    };
    let sent = copy_to_socket(&mut file, &mut data).map_err(CopyError::Socket)?;
    data.shutdown(std::net::Shutdown::Write)
        .map_err(CopyError::Socket)?;
    Ok(sent)
}

/// Sends the rest of `file` to `data`: with sendfile(2) on Linux (the bytes go from the page
/// cache to the socket without passing through this process), else through a buffer.
fn copy_to_socket(
    file: &mut std::fs::File,
    data: &mut std::net::TcpStream,
) -> std::io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        let mut sent = 0u64;
        loop {
            match rustix::fs::sendfile(&*data, &*file, None, 1 << 30) {
                Ok(0) => return Ok(sent),
                Ok(n) => sent += n as u64,
                Err(rustix::io::Errno::INTR) => {}
                // A file system without sendfile support: nothing was sent yet.
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) if sent == 0 => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match std::io::Read::read(file, &mut buf) {
            Ok(0) => return Ok(sent),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        std::io::Write::write_all(data, &buf[..n])?;
        sent += n as u64;
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
