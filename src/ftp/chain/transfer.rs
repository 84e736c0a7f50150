//! A chained upload's transfer: its command and what travels right behind it, the bytes sent
//! while the replies are read, and the 226 that ends it. Its failures say whether the control
//! connection is still in step.

use std::net::SocketAddr;
use std::time::Duration;

use suppaftp::Status;
use tokio_util::sync::CancellationToken;

use super::{
    answered_early, checks, read_renames, unknown_command, Early, Renamed, Sent, Signs, Started,
    Upload,
};
use crate::ftp::data::{send_file, Destination};
use crate::ftp::error::{FtpError, UploadError};
use crate::ftp::pipeline::{reply, Control, PRELIMINARY, TRANSFER_DONE};

/// An upload's transfer command and the data address it goes to.
pub(super) struct Transfer {
    pub(super) command: String,
    addr: SocketAddr,
}

impl Transfer {
    pub(super) fn new(up: &Upload, addr: SocketAddr) -> Transfer {
        let verb = if up.offset > 0 { "APPE" } else { "STOR" };
        Transfer {
            command: format!("{verb} {}", up.temp),
            addr,
        }
    }

    /// The transfer command and what `tail` puts right behind it.
    pub(super) fn batch(&self, up: &Upload, tail: Tail) -> String {
        format!("{}\r\n{}", self.command, tail.commands(up))
    }
}

/// What is written right behind a transfer command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tail {
    Nothing,
    Noop,
    Checks,
}

impl From<Early> for Tail {
    fn from(early: Early) -> Tail {
        match early {
            Early::Off => Tail::Nothing,
            Early::Probe => Tail::Noop,
            Early::On => Tail::Checks,
        }
    }
}

impl Tail {
    fn commands(self, up: &Upload) -> String {
        match self {
            Tail::Nothing => String::new(),
            Tail::Noop => "NOOP\r\n".into(),
            Tail::Checks => checks(up) + "PASV\r\n",
        }
    }

    /// How many replies the commands get.
    fn replies(self, up: &Upload) -> usize {
        self.commands(up).matches("\r\n").count()
    }
}

/// What came back while an upload's bytes went out.
pub(super) enum Exchanged {
    /// The replies to the held upload's renames broke the connection.
    Broken(FtpError),
    /// The renames' outcome (Ok when none were sent), and the transfer's start.
    Read(Result<Renamed, FtpError>, Opening),
}

/// A transfer's start: the reply to its command, and its bytes sent.
pub(super) struct Opening {
    opened: Result<String, FtpError>,
    /// A server that runs commands side by side answered the probe before the 150.
    noop_first: bool,
    /// None when the sending stopped because the command was refused.
    sent: Option<Result<u64, UploadError>>,
}

/// Sends `up`'s bytes as soon as the data connection is open, while the replies are read: the
/// renames of `renaming` (the held upload, when it is put in place), then the transfer command's. If the server
/// refuses the transfer command instead of opening the transfer, the sending stops.
pub(super) async fn exchange(
    stream: &mut Control,
    renaming: Option<&Upload>,
    up: &Upload,
    transfer: &Transfer,
    tail: Tail,
    timeout: Duration,
) -> Exchanged {
    let command = &transfer.command;
    let refused = CancellationToken::new();
    let tls = stream.data_tls();
    let sending = async {
        let to = Destination {
            addr: transfer.addr,
            tls: tls.as_ref(),
            command,
        };
        tokio::select! {
            sent = send_file(&up.local, up.offset, up.version.0, to, timeout, up.progress.as_ref(), up.limit.as_ref()) => Some(sent),
            _ = refused.cancelled() => None,
        }
    };
    let reading = async {
        let renamed = read_renames(stream, renaming, timeout).await;
        if let Err(e) = &renamed {
            if e.breaks_connection() {
                refused.cancel();
                return Err(e.clone());
            }
        }
        let mut opened = reply(stream, command, &PRELIMINARY, timeout).await;
        // A server that runs commands side by side may answer the probe before the transfer
        // even began; its 150 is next.
        let noop_first = tail == Tail::Noop
            && opened
                .as_ref()
                .is_err_and(|e| matches!(e.code(), Some(200 | 500..=503)));
        if noop_first {
            opened = reply(stream, command, &PRELIMINARY, timeout).await;
        }
        if opened.is_err() {
            refused.cancel();
        }
        Ok((renamed, opened, noop_first))
    };
    let (sent, read) = tokio::join!(sending, reading);
    match read {
        Err(e) => Exchanged::Broken(e),
        Ok((renamed, opened, noop_first)) => Exchanged::Read(
            renamed,
            Opening {
                opened,
                noop_first,
                sent,
            },
        ),
    }
}

/// The end of `up`'s transfer: its 226, and what came with it. `signs` so far in the call.
pub(super) async fn confirm(
    stream: &mut Control,
    up: Upload,
    transfer: &Transfer,
    tail: Tail,
    opening: Opening,
    mut signs: Signs,
    timeout: Duration,
) -> Started {
    let command = &transfer.command;
    let Opening {
        opened,
        noop_first,
        sent,
    } = opening;
    let tail = if noop_first {
        signs.early_refused = true;
        Tail::Nothing
    } else {
        tail
    };
    let mut untried = false;
    let result = match (opened, sent) {
        (Err(e), _) if e.breaks_connection() => Err(Refusal::OutOfStep(e.into())),
        // Anything but a refusal in place of the 150: the checks were answered early.
        (Err(e), _) if tail == Tail::Checks && e.code().is_some_and(|c| c < 400) => {
            Err(Refusal::EarlyChecks(answered_early(command, &e)))
        }
        // A refusal, or an early check answered first: which one cannot be told, so the
        // connection goes and the upload is tried again without its checks behind it.
        (Err(e), _) if tail == Tail::Checks => {
            untried = true;
            Err(Refusal::OutOfStep(e.into()))
        }
        // Refused: the commands behind it are answered all the same.
        (Err(e), _) => match drain(stream, tail.replies(&up), timeout).await {
            Ok(()) => Err(Refusal::Other(e.into())),
            Err(broken) => Err(Refusal::OutOfStep(broken.into())),
        },
        (Ok(_), Some(Ok(n))) => {
            end_transfer(stream, &up, command, tail, timeout)
                .await
                .map(|probe| {
                    // Kept when the probe was answered before the 150 (`noop_first`).
                    signs.early_refused |= probe == Some(false);
                    signs.probe_passed = probe == Some(true);
                    n
                })
        }
        // A server that stopped reading: nothing more is waited for.
        (Ok(_), Some(Err(e @ UploadError::Remote(FtpError::Timeout { .. })))) => {
            Err(Refusal::OutOfStep(e))
        }
        (Ok(_), Some(Err(e))) => {
            // The data connection broke (a full server closes it: its reply says so) or the
            // local file could not be read: the server ends the transfer its own way.
            match reply(stream, command, &TRANSFER_DONE, timeout).await {
                Err(r) if r.breaks_connection() => Err(Refusal::OutOfStep(r.into())),
                ended => match drain(stream, tail.replies(&up), timeout).await {
                    Err(broken) => Err(Refusal::OutOfStep(broken.into())),
                    Ok(()) => match (ended, e) {
                        (Err(why), UploadError::Remote(_)) => Err(Refusal::Other(why.into())),
                        (_, e) => Err(Refusal::Other(e)),
                    },
                },
            }
        }
        (Ok(_), None) => unreachable!("the sending stops only when the command was refused"),
    };
    let sent = match result {
        Ok(sent) => Ok(Sent {
            up,
            sent,
            checks_sent: tail == Tail::Checks,
        }),
        Err(Refusal::EarlyChecks(e)) => {
            signs.early_refused = true;
            signs.out_of_step = true;
            Err(e.into())
        }
        Err(Refusal::OutOfStep(e)) => {
            signs.out_of_step = true;
            Err(e)
        }
        Err(Refusal::Other(e)) => Err(e),
    };
    Started {
        sent,
        untried,
        signs,
    }
}

enum Refusal {
    /// The server answered the early checks during the transfer.
    EarlyChecks(FtpError),
    /// The control connection's replies are out of step.
    OutOfStep(UploadError),
    Other(UploadError),
}

/// Reads and drops `count` replies, whatever their codes.
async fn drain(stream: &mut Control, count: usize, timeout: Duration) -> Result<(), FtpError> {
    for _ in 0..count {
        match reply(stream, "command", &[], timeout).await {
            Err(e) if e.breaks_connection() => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The 226 that ends a transfer, and the replies `tail` makes due. With checks behind the
/// transfer command, a reply of 500-503 in place of the 226 means the server read them during
/// the transfer (Refusal::EarlyChecks). With a probe, returns whether the server kept the NOOP
/// for after the 226.
async fn end_transfer(
    stream: &mut Control,
    up: &Upload,
    command: &str,
    tail: Tail,
    timeout: Duration,
) -> Result<Option<bool>, Refusal> {
    let done = reply(stream, command, &TRANSFER_DONE, timeout).await;
    match (tail, done) {
        (Tail::Nothing, done) => done.map(|_| None).map_err(|e| Refusal::Other(e.into())),
        (_, Err(e)) if e.breaks_connection() => Err(Refusal::OutOfStep(e.into())),
        (Tail::Noop, Ok(_)) => match reply(stream, "NOOP", &[Status::CommandOk], timeout).await {
            Ok(_) => Ok(Some(true)),
            Err(e) if e.breaks_connection() => Err(Refusal::OutOfStep(e.into())),
            Err(_) => Ok(Some(false)),
        },
        // The NOOP was answered during the transfer (500 from pure-ftpd, 200 from a server that
        // runs commands side by side): the 226 is next.
        (Tail::Noop, Err(e)) if unknown_command(&e) || e.code() == Some(200) => {
            match reply(stream, command, &TRANSFER_DONE, timeout).await {
                Ok(_) => Ok(Some(false)),
                Err(e) if e.breaks_connection() => Err(Refusal::OutOfStep(e.into())),
                Err(e) => Err(Refusal::Other(e.into())),
            }
        }
        (Tail::Checks, Ok(_)) => Ok(None),
        (Tail::Checks, Err(e)) if unknown_command(&e) || e.code().is_some_and(|c| c < 400) => {
            Err(Refusal::EarlyChecks(answered_early(command, &e)))
        }
        // The transfer failed; the replies to the commands behind it follow.
        (_, Err(e)) => match drain(stream, tail.replies(up), timeout).await {
            Ok(()) => Err(Refusal::Other(e.into())),
            Err(broken) => Err(Refusal::OutOfStep(broken.into())),
        },
    }
}
