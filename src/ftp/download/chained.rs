//! Downloads in a chain on one connection: the next file's `PASV` and `RETR` written while the
//! current file's transfer is under way, so that a server which reads its control connection
//! only between transfers (vsftpd) answers the next `PASV` together with the current `226`. A
//! small file then costs two round trips (its data connection, then its bytes) instead of three.
//!
//! What goes behind a `RETR` is written once its `PASV` reply came, before the data connection
//! is opened, so before the server can begin the transfer. A server that reads commands during a
//! transfer (pure-ftpd answers them `500` and drops them) must not get the next download there:
//! a `NOOP` behind the `RETR` finds out first (one command, one reply, whatever the server does),
//! and the caller chains only after several such probes came back after their `226` (see
//! `crate::engine::quirks`). A reply out of place always ends the connection, never a file: a
//! download counts only once its `226` came in its place and its size matched.

use std::time::Duration;

use suppaftp::Status;
use tokio::io::AsyncWriteExt;

use super::{receive, DownloadError};
use crate::ftp::chain::{answered_early, unknown_command, Signs};
use crate::ftp::data::Meter;
use crate::ftp::error::FtpError;
use crate::ftp::pipeline::{self, reply, Control, TRANSFER_DONE};
use crate::ftp::{op, Connection};

/// What is written right behind a download's `RETR` (see the module's header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Behind {
    Nothing,
    /// A `NOOP`, to find out whether the server keeps it for after the transfer.
    Probe,
    /// The next download's `PASV` and `RETR`, of this remote path.
    Next(String),
}

impl Behind {
    fn commands(&self) -> Option<String> {
        match self {
            Behind::Nothing => None,
            Behind::Probe => Some("NOOP\r\n".into()),
            Behind::Next(path) => Some(format!("PASV\r\n{}\r\n", op("RETR", path))),
        }
    }

    /// Whether `e`, read where the transfer's own reply was due, answers what went behind it
    /// (its own reply, or the 500-503 of a server that read it during the transfer, or before
    /// it began). A 500-503 that refuses the RETR itself cannot be told apart: taking it for
    /// the server reading what went behind costs only the chain.
    fn read_early(&self, e: &FtpError) -> bool {
        let own = match self {
            Behind::Nothing => return false,
            Behind::Probe => 200,
            Behind::Next(_) => 227,
        };
        e.code() == Some(own) || unknown_command(e)
    }
}

/// How a chained download went.
#[derive(Debug)]
pub(crate) struct Chained {
    /// The bytes received (all of them, checked against nothing yet), or why not.
    pub(crate) received: Result<u64, DownloadError>,
    pub(crate) signs: Signs,
    /// The next download's `PASV` and `RETR` went out and the connection is in step: its `PASV`
    /// reply is the next one due.
    pub(crate) next_sent: bool,
    /// The failure is not a try of this download: the server mishandled what went behind it.
    pub(crate) untried: bool,
}

impl Chained {
    fn failed(e: impl Into<DownloadError>, mut signs: Signs, untried: bool) -> Chained {
        signs.out_of_step = true;
        Chained {
            received: Err(e.into()),
            signs,
            next_sent: false,
            untried,
        }
    }
}

impl Connection {
    /// Downloads the remote file `path` (whole) into `file`, as
    /// [`Connection::download_to`] does, with what `behind` says written behind its `RETR` (asked
    /// once the `PASV` reply came). `sent`: its
    /// `PASV` and `RETR` went out behind the previous download already (their replies are the
    /// next due). At most `most` bytes are taken.
    pub(crate) async fn download_chained(
        &mut self,
        path: &str,
        sent: bool,
        behind: impl FnOnce() -> Behind,
        file: &mut tokio::fs::File,
        meter: Meter<'_>,
        most: u64,
    ) -> Chained {
        let mut signs = Signs::default();
        if !sent {
            if let Err(e) = self.keep_session_resumable().await {
                return Chained::failed(e, signs, false);
            }
        }
        let operation = op("RETR", path);
        let timeout = self.timeout;
        let stream = &mut self.stream;
        let addr = match announce(stream, &operation, sent, timeout).await {
            Ok(addr) => addr,
            Err(e) => return Chained::failed(e, signs, false),
        };
        // Decided now, a round trip after the download began: the next one is likelier there.
        let behind = behind();
        if let Some(commands) = behind.commands() {
            if let Err(e) = stream.send(&commands, timeout).await {
                return Chained::failed(e, signs, false);
            }
        }
        let mut data =
            match pipeline::connect_transfer(stream, addr, &operation, true, timeout).await {
                Ok(data) => data,
                Err(e) => return refused(stream, (&operation, e), &behind, signs, timeout).await,
            };
        let received = receive(&mut data, file, meter, timeout, &operation, (0, most)).await;
        drop(data);
        let mut probe_due = behind == Behind::Probe;
        let mut done = reply(stream, &operation, &TRANSFER_DONE, timeout).await;
        if let Err(e) = &done {
            if behind.read_early(e) {
                signs.early_refused = true;
                if behind != Behind::Probe {
                    return Chained::failed(answered_early(&operation, e), signs, true);
                }
                // The probe was answered during the transfer: the 226 is next.
                probe_due = false;
                done = reply(stream, &operation, &TRANSFER_DONE, timeout).await;
            }
        }
        // Also when the bytes failed first: a connection whose 226 went astray goes.
        let mut broken = done.as_ref().is_err_and(FtpError::breaks_connection);
        if probe_due && !broken {
            match reply(stream, "NOOP", &[Status::CommandOk], timeout).await {
                Ok(_) => signs.probe_passed = true,
                Err(e) if e.breaks_connection() => {
                    // A server that swallows commands sent during a transfer never answers
                    // them. The download, whose 226 came in its place, stands all the same.
                    signs.early_refused = matches!(e, FtpError::Timeout { .. });
                    broken = true;
                }
                Err(_) => signs.early_refused = true,
            }
        }
        let received = match (received, done) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
            (Ok(n), Ok(_)) => file.flush().await.map(|()| n).map_err(DownloadError::Local),
        };
        signs.out_of_step =
            broken || matches!(&received, Err(DownloadError::Remote(e)) if e.breaks_connection());
        Chained {
            next_sent: matches!(behind, Behind::Next(_)) && !signs.out_of_step,
            received,
            signs,
            untried: false,
        }
    }
}

impl Connection {
    /// Logs out of a connection whose download sent ahead will not be taken (a stop, or the
    /// download before it tried again first): `QUIT` behind it, its `PASV` reply read, its data
    /// connection opened and closed at once (a server waiting for it lets go: vsftpd would wait
    /// a minute, a session more against its limits), then the replies up to the `221`. Each
    /// wait is bounded by the timeout; failures only end it sooner.
    pub(crate) async fn abandon_sent_ahead(mut self) {
        let timeout = self.timeout;
        let stream = &mut self.stream;
        let Ok(peer) = pipeline::peer_of(stream).await else {
            return;
        };
        if stream.send("QUIT\r\n", timeout).await.is_err() {
            return;
        }
        let Ok(addr) = pipeline::read_pasv(stream, peer, timeout).await else {
            return;
        };
        let connect = tokio::net::TcpStream::connect(addr);
        if !matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_))) {
            return;
        }
        // The download's replies (150, then 226 or 426; or a refusal), then the 221.
        for _ in 0..4 {
            match reply(stream, "QUIT", &[Status::Closing], timeout).await {
                Err(e) if !e.breaks_connection() => continue,
                _ => return,
            }
        }
    }
}

/// The `PASV` and `RETR` of a download (written now unless `sent`), and the data address from
/// the `PASV` reply. A `PASV` refused leaves the `RETR`'s reply unread: [`FtpError::Garbled`].
async fn announce(
    stream: &mut Control,
    operation: &str,
    sent: bool,
    timeout: Duration,
) -> Result<std::net::SocketAddr, FtpError> {
    let peer = pipeline::peer_of(stream).await?;
    if !sent {
        stream
            .send(&format!("PASV\r\n{operation}\r\n"), timeout)
            .await?;
    }
    pipeline::read_pasv(stream, peer, timeout)
        .await
        .map_err(|e| FtpError::Garbled {
            operation: operation.to_string(),
            reply: format!("PASV failed with the command behind it: {e}"),
        })
}

/// The transfer did not begin (`e` in place of its 150): a refusal of the file, with what went
/// behind the `RETR` answered afterwards in its turn, or a reply to that, read early.
async fn refused(
    stream: &mut Control,
    (operation, e): (&str, FtpError),
    behind: &Behind,
    mut signs: Signs,
    timeout: Duration,
) -> Chained {
    if e.code().is_none() || e.breaks_connection() {
        return Chained::failed(e, signs, false);
    }
    if behind.read_early(&e) {
        // As after the transfer (see `Behind::read_early`): trusting a 500-503 here would spoil
        // a download and cost a login at every link.
        signs.early_refused = true;
        return Chained::failed(answered_early(operation, &e), signs, true);
    }
    if behind == &Behind::Probe {
        if let Err(broken) = reply(stream, "NOOP", &[], timeout).await {
            if broken.breaks_connection() {
                return Chained::failed(broken, signs, false);
            }
        }
    }
    Chained {
        received: Err(e.into()),
        signs,
        next_sent: matches!(behind, Behind::Next(_)),
        untried: false,
    }
}
