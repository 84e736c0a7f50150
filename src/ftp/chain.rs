//! Uploads on one plain FTP connection, chained: commands sent without waiting where the
//! protocol allows it (see [`crate::ftp::pipeline`]), and a transfer's bytes sent as soon as its data
//! connection is open. This is what decides the speed of many small files over a real link.
//!
//! The uploads on one connection form a chain of [`step`]s. Each step finishes the previous upload
//! and starts the next, their commands sharing writes:
//!
//! 1. unless they already went (below), the previous upload's checks (`SIZE` of its temporary
//!    file, the command that sets its time) and the next `PASV`, in one write;
//! 2. the previous upload's `RNFR` + `RNTO` (only if its 226 and its checks came back right and
//!    the local file did not change) and the next `STOR`, in one write; the bytes go out as soon
//!    as the data connection is open, without waiting for the 150; then the 226.
//!
//! Three round trips per small file instead of eight. Most servers read a command line only
//! when the one before it is done, so commands written together with the `STOR` wait until its
//! transfer is over: there, step 1's checks and PASV travel right behind the `STOR` ("early
//! checks"), and a file costs two round trips (data connection, then bytes and 226). A server
//! that reads the control connection during a transfer (and answers commands with an error)
//! must not get them: a `NOOP` behind the `STOR` finds out first, one command and one reply
//! whatever the server does, and checks travel early only after several such probes came back
//! after their 226. Nothing is ever renamed into place before its 226 and its size check came
//! back.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use suppaftp::Status;
use tokio_util::sync::CancellationToken;

use super::data::send_file;
use super::error::{FtpError, UploadError};
use super::pipeline::{
    first_word, peer_of, read_pasv, reply, send, Stream, PRELIMINARY, TRANSFER_DONE,
};

/// A local file's size and modification time.
pub(crate) type Version = (u64, Option<SystemTime>);

/// What a pipelined atomic upload did.
#[derive(Debug)]
pub(crate) struct Stored {
    /// Bytes sent (from the offset on).
    pub(crate) sent: u64,
    /// The outcome of setting the modification time, when asked.
    pub(crate) time_set: Option<Result<(), FtpError>>,
}

/// An atomic upload: `local` from byte `offset` to `temp` (APPE when resuming), size check,
/// time, rename over `target`.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub(crate) temp: String,
    pub(crate) target: String,
    pub(crate) local: PathBuf,
    pub(crate) offset: u64,
    /// Total size the temporary file must have; checked with SIZE when Some.
    pub(crate) expect_size: Option<u64>,
    /// The command that sets the temporary file's time (e.g. `MFMT 20240102030405 path`); the
    /// rename keeps it, and a refused rename leaves the old file's time alone.
    pub(crate) set_time: Option<String>,
    /// The local file when the upload began: a file that changed meanwhile is not put in place.
    pub(crate) version: Version,
}

/// An upload whose bytes the server confirmed (226), not yet checked and renamed.
#[derive(Debug)]
pub(crate) struct Sent {
    up: Upload,
    sent: u64,
    /// The checks and a PASV went out before the 226; their replies are due.
    checks_sent: bool,
}

/// What one [`step`] did.
#[derive(Debug, Default)]
pub(crate) struct Step {
    /// The previous upload's end: stored and renamed, or why not.
    pub(crate) prev: Option<Result<Stored, UploadError>>,
    /// The next upload's start: its bytes confirmed, or why not.
    pub(crate) next: Option<Result<Sent, UploadError>>,
    /// The server answered commands sent during a transfer: no early checks with it.
    pub(crate) early_refused: bool,
    /// A probe's outcome: the server left a NOOP sent during the transfer until after its 226.
    pub(crate) probe_passed: bool,
    /// The control connection's replies are out of step: it must not be used again.
    pub(crate) out_of_step: bool,
    /// The next upload's failure is not a try of it: its transfer command never went out, or
    /// what came back could not be told from the replies to the checks behind it.
    pub(crate) next_untried: bool,
}

/// One atomic upload on its own: its start, then its end (five round trips).
pub(crate) async fn store(
    stream: &mut Stream,
    up: Upload,
    timeout: Duration,
) -> Result<Stored, UploadError> {
    let started = step(stream, None, Some(up), Early::Off, timeout).await;
    let sent = started
        .next
        .expect("a step with a next upload reports it")?;
    let ended = step(stream, Some(sent), None, Early::Off, timeout).await;
    ended
        .prev
        .expect("a step with a previous upload reports it")
}

/// The size check and time command of `up` (step 1's part for it).
fn checks(up: &Upload) -> String {
    let mut batch = String::new();
    if up.expect_size.is_some() {
        batch.push_str(&format!("SIZE {}\r\n", up.temp));
    }
    if let Some(command) = &up.set_time {
        batch.push_str(command);
        batch.push_str("\r\n");
    }
    batch
}

/// The replies to [`checks`]: Err(breaking) when the connection failed; otherwise whether the
/// size is right (an error naming what is wrong) and the time command's outcome.
async fn read_checks(
    stream: &mut Stream,
    sent: &Sent,
    timeout: Duration,
) -> Result<(Result<(), FtpError>, Option<Result<(), FtpError>>), FtpError> {
    let up = &sent.up;
    let mut size_ok = Ok(());
    if let Some(expected) = up.expect_size {
        match reply(stream, "SIZE", &[Status::File], timeout).await {
            Ok(text) => {
                let stored: Option<u64> =
                    text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                size_ok = match stored {
                    Some(stored) if stored == expected => Ok(()),
                    Some(stored) => Err(FtpError::SizeMismatch {
                        operation: format!("STOR {}", up.target),
                        stored,
                        expected,
                    }),
                    None => Err(FtpError::Garbled {
                        operation: format!("SIZE {}", up.temp),
                        reply: text,
                    }),
                };
            }
            Err(e) if e.breaks_connection() => return Err(e),
            Err(e) => size_ok = Err(e),
        }
    }
    let mut time_set = None;
    if let Some(command) = &up.set_time {
        let accepted = [
            Status::File,
            Status::CommandOk,
            Status::RequestedFileActionOk,
        ];
        match reply(stream, first_word(command), &accepted, timeout).await {
            Err(e) if e.breaks_connection() => return Err(e),
            outcome => time_set = Some(outcome.map(|_| ())),
        }
    }
    Ok((size_ok, time_set))
}

/// A reply saying the command was not understood (500-503).
fn garbled(reply: &Result<(), FtpError>) -> bool {
    matches!(
        reply,
        Err(FtpError::Reply {
            code: 500..=503,
            ..
        })
    )
}

/// Whether the local file is still the version whose upload began.
fn still_same(up: &Upload) -> bool {
    version_of(&up.local).ok() == Some(up.version)
}

/// The local file's size and modification time now.
pub(crate) fn version_of(local: &std::path::Path) -> std::io::Result<Version> {
    std::fs::metadata(local).map(|m| (m.len(), m.modified().ok()))
}

/// Finishes `prev` (checks, time, rename) and starts `next` (PASV, transfer command, bytes, 226),
/// with their commands sharing writes (see the module header). `early`: send the next upload's
/// checks right after its data connection closes, before the 226.
pub(crate) async fn step(
    stream: &mut Stream,
    prev: Option<Sent>,
    next: Option<Upload>,
    early: Early,
    timeout: Duration,
) -> Step {
    let mut out = Step::default();
    let broken = |out: &mut Step, prev: bool, next: bool, e: FtpError| {
        if prev {
            out.prev = Some(Err(e.clone().into()));
        }
        if next {
            out.next = Some(Err(e.into()));
        }
    };
    let (has_prev, has_next) = (prev.is_some(), next.is_some());
    out.next_untried = has_next;
    let peer = match peer_of(stream).await {
        Ok(peer) => peer,
        Err(e) => {
            broken(&mut out, has_prev, has_next, e);
            return out;
        }
    };

    // 1. The previous upload's checks and the next PASV (both already sent when early).
    let pasv_pending = prev.as_ref().is_some_and(|p| p.checks_sent);
    let mut batch = match &prev {
        Some(p) if !p.checks_sent => checks(&p.up),
        _ => String::new(),
    };
    if has_next && !pasv_pending {
        batch.push_str("PASV\r\n");
    }
    if !batch.is_empty() {
        if let Err(e) = send(stream, &batch, timeout).await {
            broken(&mut out, has_prev, has_next, e);
            return out;
        }
    }
    let mut verdict = None;
    if let Some(p) = &prev {
        match read_checks(stream, p, timeout).await {
            Ok((size_ok, time_set))
                if p.checks_sent
                    && (garbled(&size_ok) || time_set.as_ref().is_some_and(garbled)) =>
            {
                // Checks sent before the 226 that came back as unknown commands: the server
                // read part of them during the transfer. What else it did with them is unknown.
                out.early_refused = true;
                out.out_of_step = true;
                let e = FtpError::Connection {
                    operation: format!("SIZE {}", p.up.temp),
                    detail: "the server read the checks during the transfer".into(),
                };
                broken(&mut out, has_prev, has_next, e);
                return out;
            }
            Ok(v) => verdict = Some(v),
            Err(e) => {
                // A server that swallows commands sent during a transfer never answers them.
                out.early_refused = p.checks_sent && matches!(e, FtpError::Timeout { .. });
                broken(&mut out, has_prev, has_next, e);
                return out;
            }
        }
    }
    let mut data_addr = None;
    if has_next || pasv_pending {
        match read_pasv(stream, peer, timeout).await {
            Ok(addr) => data_addr = Some(addr),
            Err(e) if e.breaks_connection() => {
                broken(&mut out, has_prev, has_next, e);
                return out;
            }
            Err(e) => {
                if has_next {
                    out.next = Some(Err(e.into()));
                }
            }
        }
    }

    // 2. The previous upload's rename (if everything checks) and the next transfer command.
    let mut prev_outcome = None;
    let mut batch = String::new();
    if let (Some(p), Some((size_ok, time_set))) = (&prev, verdict) {
        match size_ok {
            Err(e) => prev_outcome = Some(Err(e.into())),
            Ok(()) if !still_same(&p.up) => prev_outcome = Some(Err(UploadError::Changed)),
            Ok(()) => {
                batch.push_str(&format!("RNFR {}\r\nRNTO {}\r\n", p.up.temp, p.up.target));
                prev_outcome = Some(Ok(time_set));
            }
        }
    }
    let renaming = matches!(prev_outcome, Some(Ok(_)));
    let tail = match early {
        Early::Off => Tail::Nothing,
        Early::Probe => Tail::Noop,
        Early::On => Tail::Checks,
    };
    let transfer = match (&next, data_addr) {
        (Some(up), Some(addr)) if out.next.is_none() => {
            let verb = if up.offset > 0 { "APPE" } else { "STOR" };
            let command = format!("{verb} {}", up.temp);
            batch.push_str(&command);
            batch.push_str("\r\n");
            batch.push_str(&tail.commands(up));
            Some((command, addr))
        }
        _ => None,
    };
    if !batch.is_empty() {
        if let Err(e) = send(stream, &batch, timeout).await {
            broken(&mut out, has_prev, has_next, e);
            return out;
        }
    }
    out.next_untried = transfer.is_none();
    // The bytes go out as soon as the data connection is open, while the replies are read;
    // if the server refuses the transfer command instead of opening the transfer, the sending
    // stops.
    let refused = CancellationToken::new();
    let sending = async {
        let (Some(up), Some((command, addr))) = (&next, &transfer) else {
            return None;
        };
        tokio::select! {
            sent = send_file(&up.local, up.offset, up.version.0, command, *addr, timeout) => Some(sent),
            _ = refused.cancelled() => None,
        }
    };
    let reading = async {
        let renamed = read_renames(stream, renaming, timeout).await;
        if renamed.as_ref().is_err_and(FtpError::breaks_connection) {
            refused.cancel();
            return (renamed, None);
        }
        let Some((command, _)) = &transfer else {
            return (renamed, None);
        };
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
        (renamed, Some((opened, noop_first)))
    };
    let (sent, (renamed, opened)) = tokio::join!(sending, reading);
    if let (Some(p), Some(outcome)) = (&prev, prev_outcome) {
        out.prev = Some(match outcome {
            Ok(time_set) => renamed
                .clone()
                .map(|()| Stored {
                    sent: p.sent,
                    time_set,
                })
                .map_err(Into::into),
            Err(e) => Err(e),
        });
    }
    if let Err(e) = &renamed {
        if e.breaks_connection() {
            if has_next && out.next.is_none() {
                out.next = Some(Err(e.clone().into()));
            }
            return out;
        }
    }

    // 3. The next upload's 226, and what came with it.
    let (Some(up), Some((command, _)), Some(opened)) = (next, transfer, opened) else {
        return out;
    };
    let (opened, noop_first) = opened;
    let tail = if noop_first {
        out.early_refused = true;
        Tail::Nothing
    } else {
        tail
    };
    let result = match (opened, sent) {
        (Err(e), _) if e.breaks_connection() => Err(Refusal::OutOfStep(e.into())),
        // Anything but a refusal in place of the 150: the checks were answered early.
        (Err(e), _) if tail == Tail::Checks && e.code().is_some_and(|c| c < 400) => {
            Err(Refusal::EarlyChecks(answered_early(&command, &e)))
        }
        // A refusal, or an early check answered first: which one cannot be told, so the
        // connection goes and the upload is tried again without its checks behind it.
        (Err(e), _) if tail == Tail::Checks => {
            out.next_untried = true;
            Err(Refusal::OutOfStep(e.into()))
        }
        // Refused: the commands behind it are answered all the same.
        (Err(e), _) => match drain(stream, tail.replies(&up), timeout).await {
            Ok(()) => Err(Refusal::Other(e.into())),
            Err(broken) => Err(Refusal::OutOfStep(broken.into())),
        },
        (Ok(_), Some(Ok(n))) => end_transfer(stream, &up, &command, tail, timeout)
            .await
            .map(|probe| {
                out.early_refused = probe == Some(false);
                out.probe_passed = probe == Some(true);
                n
            }),
        // A server that stopped reading: nothing more is waited for.
        (Ok(_), Some(Err(e @ UploadError::Remote(FtpError::Timeout { .. })))) => {
            Err(Refusal::OutOfStep(e))
        }
        (Ok(_), Some(Err(e))) => {
            // The data connection broke (a full server closes it: its reply says so) or the
            // local file could not be read: the server ends the transfer its own way.
            match reply(stream, &command, &TRANSFER_DONE, timeout).await {
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
    match result {
        Ok(sent) => {
            out.next = Some(Ok(Sent {
                up,
                sent,
                checks_sent: tail == Tail::Checks,
            }))
        }
        Err(Refusal::EarlyChecks(e)) => {
            out.early_refused = true;
            out.out_of_step = true;
            out.next = Some(Err(e.into()));
        }
        Err(Refusal::OutOfStep(e)) => {
            out.out_of_step = true;
            out.next = Some(Err(e));
        }
        Err(Refusal::Other(e)) => out.next = Some(Err(e)),
    }
    out
}

enum Refusal {
    /// The server answered the early checks during the transfer.
    EarlyChecks(FtpError),
    /// The control connection's replies are out of step.
    OutOfStep(UploadError),
    Other(UploadError),
}

/// The replies to RNFR and RNTO, when they were sent.
async fn read_renames(
    stream: &mut Stream,
    renaming: bool,
    timeout: Duration,
) -> Result<(), FtpError> {
    if !renaming {
        return Ok(());
    }
    let from = reply(stream, "RNFR", &[Status::RequestFilePending], timeout).await;
    if from.as_ref().is_err_and(FtpError::breaks_connection) {
        return from.map(|_| ());
    }
    let ok = [Status::RequestedFileActionOk, Status::CommandOk];
    let to = reply(stream, "RNTO", &ok, timeout).await;
    from.and(to).map(|_| ())
}

/// The error for checks a server answered during the transfer they were sent behind.
fn answered_early(command: &str, e: &FtpError) -> FtpError {
    FtpError::Connection {
        operation: command.to_string(),
        detail: format!(
            "the server answered commands sent during the transfer ({e}); its replies are out of step"
        ),
    }
}

/// Reads and drops `count` replies, whatever their codes.
async fn drain(stream: &mut Stream, count: usize, timeout: Duration) -> Result<(), FtpError> {
    for _ in 0..count {
        match reply(stream, "command", &[], timeout).await {
            Err(e) if e.breaks_connection() => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// How an upload's checks travel (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Early {
    /// After the 226.
    Off,
    /// After the 226, and a `NOOP` right behind the transfer command, to find out whether the
    /// server keeps it until the transfer is over (one command, one reply either way: the
    /// connection stays in step whatever the server does).
    Probe,
    /// Right behind the transfer command, with the next PASV.
    On,
}

/// What is written right behind a transfer command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    Nothing,
    Noop,
    Checks,
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

/// The 226 that ends a transfer, and the replies `tail` makes due. With checks behind the
/// transfer command, a reply of 500-503 in place of the 226 means the server read them during
/// the transfer (Refusal::EarlyChecks). With a probe, returns whether the server kept the NOOP
/// for after the 226.
async fn end_transfer(
    stream: &mut Stream,
    up: &Upload,
    command: &str,
    tail: Tail,
    timeout: Duration,
) -> Result<Option<bool>, Refusal> {
    let done = reply(stream, command, &TRANSFER_DONE, timeout).await;
    let unknown_command = |e: &FtpError| {
        matches!(
            e,
            FtpError::Reply {
                code: 500..=503,
                ..
            }
        )
    };
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

#[cfg(test)]
mod tests;
