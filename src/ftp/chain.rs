//! Uploads on one connection (plain or TLS), chained: commands sent without waiting where the
//! protocol allows it (see [`crate::ftp::pipeline`]), and a transfer's bytes sent as soon as its data
//! connection is open. This is what decides the speed of many small files over a real link.
//!
//! The uploads on one connection form a chain: [`start`] begins the first, [`finish_and_start`]
//! ends the upload held (bytes on the server, 226 read) while the next one begins, and
//! [`finish`] ends the last. Where an end and a start meet, their commands share writes:
//!
//! 1. unless they already went (below), the held upload's checks (`SIZE` of its temporary file,
//!    the command that sets its time) and the next `PASV`, in one write;
//! 2. the held upload's `RNFR` + `RNTO` (behind its `SITE CHMOD` with `--chmod`; only if its 226 and its checks came back right and the
//!    local file did not change) and the next `STOR`, in one write; the bytes go out as soon as
//!    the data connection is open, without waiting for the 150 (see [`transfer`]); then the 226.
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

use super::batch::PathCommand;
use super::error::{FtpError, UploadError};
use super::pipeline::{first_word, peer_of, read_pasv, reply, Control};
use transfer::{confirm, exchange, Exchanged, Tail, Transfer};

mod transfer;

/// A local file's size and modification time.
pub(crate) type Version = (u64, Option<SystemTime>);

/// What a pipelined atomic upload did.
#[derive(Debug)]
pub(crate) struct Stored {
    /// Bytes sent (from the offset on).
    pub(crate) sent: u64,
    /// The outcome of setting the modification time, when asked.
    pub(crate) time_set: Option<Result<(), FtpError>>,
    /// The outcome of the `SITE CHMOD`, when asked.
    pub(crate) chmod: Option<Result<(), FtpError>>,
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
    /// The mode the temporary file gets (`SITE CHMOD`, right before the rename, which keeps it).
    pub(crate) chmod: Option<u32>,
    /// Counts the bytes as they go, for a progress display (None: nobody watches).
    pub(crate) progress: Option<super::data::Sent>,
    /// The run's `--bwlimit`, which the bytes take from (None: no limit).
    pub(crate) limit: Option<std::sync::Arc<super::bwlimit::Bandwidth>>,
}

/// An upload whose bytes the server confirmed (226), not yet checked and renamed.
#[derive(Debug)]
pub(crate) struct Sent {
    up: Upload,
    sent: u64,
    /// The checks and a PASV went out before the 226; their replies are due.
    checks_sent: bool,
}

/// What a chain call showed of the server and the connection.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Signs {
    /// The server answered commands sent during a transfer: no early checks with it.
    pub(crate) early_refused: bool,
    /// A probe's outcome: the server left a NOOP sent during the transfer until after its 226.
    pub(crate) probe_passed: bool,
    /// The control connection's replies are out of step: it must not be used again.
    pub(crate) out_of_step: bool,
}

/// How an upload's start went ([`start`]).
#[derive(Debug)]
pub(crate) struct Started {
    /// Its bytes confirmed, or why not.
    pub(crate) sent: Result<Sent, UploadError>,
    /// The failure is not a try of the upload: its transfer command never went out, or what
    /// came back could not be told from the replies to the checks behind it.
    pub(crate) untried: bool,
    pub(crate) signs: Signs,
}

/// How the end of a held upload went ([`finish`]).
#[derive(Debug)]
pub(crate) struct Finished {
    /// Stored and renamed, or why not.
    pub(crate) stored: Result<Stored, UploadError>,
    pub(crate) signs: Signs,
}

/// How the end of a held upload and the start of the next went ([`finish_and_start`]).
#[derive(Debug)]
pub(crate) struct Handover {
    /// The held upload: stored and renamed, or why not.
    pub(crate) stored: Result<Stored, UploadError>,
    /// The next upload (its signs are the whole call's).
    pub(crate) started: Started,
}

/// One atomic upload on its own: its start, then its end (five round trips).
pub(crate) async fn store(
    stream: &mut Control,
    up: Upload,
    timeout: Duration,
) -> Result<Stored, UploadError> {
    let sent = start(stream, up, Early::Off, timeout).await.sent?;
    finish(stream, sent, timeout).await.stored
}

/// Begins `up` with no upload held: PASV, then the transfer command (and what `early` puts
/// behind it) with the bytes, then the 226.
pub(crate) async fn start(
    stream: &mut Control,
    up: Upload,
    early: Early,
    timeout: Duration,
) -> Started {
    let broken = |e: FtpError| Started {
        sent: Err(e.into()),
        untried: true,
        signs: Signs::default(),
    };
    let peer = match peer_of(stream).await {
        Ok(peer) => peer,
        Err(e) => return broken(e),
    };
    if let Err(e) = stream.send("PASV\r\n", timeout).await {
        return broken(e);
    }
    let addr = match read_pasv(stream, peer, timeout).await {
        Ok(addr) => addr,
        Err(e) => return broken(e),
    };
    let tail = Tail::from(early);
    let transfer = Transfer::new(&up, addr);
    if let Err(e) = stream.send(&transfer.batch(&up, tail), timeout).await {
        return broken(e);
    }
    match exchange(stream, None, &up, &transfer, tail, timeout).await {
        Exchanged::Read(_, opening) => {
            confirm(
                stream,
                up,
                &transfer,
                tail,
                opening,
                Signs::default(),
                timeout,
            )
            .await
        }
        Exchanged::Broken(e) => Started {
            sent: Err(e.into()),
            untried: false,
            signs: Signs::default(),
        },
    }
}

/// Ends `held` with no next upload: its checks (unless they went early), then its rename.
pub(crate) async fn finish(stream: &mut Control, held: Sent, timeout: Duration) -> Finished {
    let mut signs = Signs::default();
    let broken = |e: FtpError, signs| Finished {
        stored: Err(e.into()),
        signs,
    };
    let peer = match peer_of(stream).await {
        Ok(peer) => peer,
        Err(e) => return broken(e, signs),
    };
    let checked = match send_and_read_checks(stream, &held, "", &mut signs, timeout).await {
        Ok(checked) => checked,
        Err(e) => return broken(e, signs),
    };
    if held.checks_sent {
        // The PASV that went with the early checks: its reply is due, its address not needed.
        match read_pasv(stream, peer, timeout).await {
            Err(e) if e.breaks_connection() => return broken(e, signs),
            _ => {}
        }
    }
    let verdict = verdict(&held, checked);
    let renaming = verdict.is_ok().then_some(&held.up);
    if let Some(up) = renaming {
        if let Err(e) = stream.send(&renames(up), timeout).await {
            return broken(e, signs);
        }
    }
    let renamed = read_renames(stream, renaming, timeout).await;
    Finished {
        stored: stored(&held, verdict, renamed),
        signs,
    }
}

/// Ends `held` while `next` starts, their commands sharing writes (see the module header).
/// `early`: how `next`'s checks travel.
pub(crate) async fn finish_and_start(
    stream: &mut Control,
    held: Sent,
    next: Upload,
    early: Early,
    timeout: Duration,
) -> Handover {
    let mut signs = Signs::default();
    let broken = |e: FtpError, signs| Handover {
        stored: Err(e.clone().into()),
        started: Started {
            sent: Err(e.into()),
            untried: true,
            signs,
        },
    };
    let peer = match peer_of(stream).await {
        Ok(peer) => peer,
        Err(e) => return broken(e, signs),
    };

    // 1. The held upload's checks and the next PASV (both already sent when early).
    let pasv = if held.checks_sent { "" } else { "PASV\r\n" };
    let checked = match send_and_read_checks(stream, &held, pasv, &mut signs, timeout).await {
        Ok(checked) => checked,
        Err(e) => return broken(e, signs),
    };
    let pasv = match read_pasv(stream, peer, timeout).await {
        Err(e) if e.breaks_connection() => return broken(e, signs),
        pasv => pasv,
    };

    // 2. The held upload's rename (if everything checks) and the next transfer command.
    let verdict = verdict(&held, checked);
    let renaming = verdict.is_ok().then_some(&held.up);
    let mut batch = renaming.map(renames).unwrap_or_default();
    let tail = Tail::from(early);
    let transfer = pasv.map(|addr| Transfer::new(&next, addr));
    if let Ok(transfer) = &transfer {
        batch.push_str(&transfer.batch(&next, tail));
    }
    if !batch.is_empty() {
        if let Err(e) = stream.send(&batch, timeout).await {
            return broken(e, signs);
        }
    }
    let transfer = match transfer {
        Ok(transfer) => transfer,
        // No data connection: the next upload does not start.
        Err(refused) => {
            let renamed = read_renames(stream, renaming, timeout).await;
            return Handover {
                stored: stored(&held, verdict, renamed),
                started: Started {
                    sent: Err(refused.into()),
                    untried: true,
                    signs,
                },
            };
        }
    };
    match exchange(stream, renaming, &next, &transfer, tail, timeout).await {
        Exchanged::Read(renamed, opening) => {
            let stored = stored(&held, verdict, renamed);
            let started = confirm(stream, next, &transfer, tail, opening, signs, timeout).await;
            Handover { stored, started }
        }
        Exchanged::Broken(e) => Handover {
            stored: stored(&held, verdict, Err(e.clone())),
            started: Started {
                sent: Err(e.into()),
                untried: false,
                signs,
            },
        },
    }
}

impl Sent {
    /// The checks still to send: none when they went early.
    fn pending_checks(&self) -> String {
        if self.checks_sent {
            String::new()
        } else {
            checks(&self.up)
        }
    }
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

/// What the checks found: whether the size is right (an error naming what is wrong) and the
/// time command's outcome.
type Checked = (Result<(), FtpError>, Option<Result<(), FtpError>>);

/// The replies to [`checks`]; Err when the connection failed or, for checks sent early, the
/// server mishandled them (said in `signs`).
/// Sends `held`'s checks (unless they went early) with `more` behind them in the same write,
/// and reads the checks' replies.
async fn send_and_read_checks(
    stream: &mut Control,
    held: &Sent,
    more: &str,
    signs: &mut Signs,
    timeout: Duration,
) -> Result<Checked, FtpError> {
    let mut batch = held.pending_checks();
    batch.push_str(more);
    if !batch.is_empty() {
        stream.send(&batch, timeout).await?;
    }
    read_checks(stream, held, signs, timeout).await
}

async fn read_checks(
    stream: &mut Control,
    held: &Sent,
    signs: &mut Signs,
    timeout: Duration,
) -> Result<Checked, FtpError> {
    let checked = match read_check_replies(stream, &held.up, timeout).await {
        Ok(checked) => checked,
        Err(e) => {
            // A server that swallows commands sent during a transfer never answers them.
            signs.early_refused = held.checks_sent && matches!(e, FtpError::Timeout { .. });
            return Err(e);
        }
    };
    let (size_ok, time_set) = &checked;
    let garbled = |reply: &Result<(), FtpError>| reply.as_ref().is_err_and(unknown_command);
    if held.checks_sent && (garbled(size_ok) || time_set.as_ref().is_some_and(garbled)) {
        // Checks sent before the 226 that came back as unknown commands: the server read part
        // of them during the transfer. What else it did with them is unknown.
        signs.early_refused = true;
        signs.out_of_step = true;
        return Err(FtpError::Connection {
            operation: format!("SIZE {}", held.up.temp),
            detail: "the server read the checks during the transfer".into(),
        });
    }
    Ok(checked)
}

/// The replies to [`checks`]: Err(breaking) when the connection failed.
async fn read_check_replies(
    stream: &mut Control,
    up: &Upload,
    timeout: Duration,
) -> Result<Checked, FtpError> {
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

/// The error for commands a server answered during the transfer they were sent behind (an
/// upload's checks, a download sent ahead, a probe): its replies are out of step.
pub(crate) fn answered_early(command: &str, e: &FtpError) -> FtpError {
    FtpError::Connection {
        operation: command.to_string(),
        detail: format!(
            "the server answered commands sent during the transfer ({e}); its replies are out of step"
        ),
    }
}

/// A reply saying the command was not understood (500-503): pure-ftpd's answer to any command
/// sent during a transfer, too.
pub(crate) fn unknown_command(e: &FtpError) -> bool {
    matches!(
        e,
        FtpError::Reply {
            code: 500..=503,
            ..
        }
    )
}

/// Whether the held upload is renamed into place: only when its size is right and the local
/// file did not change. Ok holds what its time command did.
fn verdict(held: &Sent, checked: Checked) -> Result<Option<Result<(), FtpError>>, UploadError> {
    let (size_ok, time_set) = checked;
    size_ok?;
    if !still_same(&held.up) {
        return Err(UploadError::Changed);
    }
    Ok(time_set)
}

/// Whether the local file is still the version whose upload began.
fn still_same(up: &Upload) -> bool {
    version_of(&up.local).ok() == Some(up.version)
}

/// The local file's size and modification time now.
pub(crate) fn version_of(local: &std::path::Path) -> std::io::Result<Version> {
    std::fs::metadata(local).map(|m| (m.len(), m.modified().ok()))
}

/// The commands that put `up` in place (its mode first: the rename keeps it).
fn renames(up: &Upload) -> String {
    let chmod = up
        .chmod
        .map(|mode| PathCommand::SiteChmod(mode).line(&up.temp) + "\r\n");
    let chmod = chmod.unwrap_or_default();
    format!("{chmod}RNFR {}\r\nRNTO {}\r\n", up.temp, up.target)
}

/// What the renames brought: the outcome of the `SITE CHMOD` before them, if one was sent.
type Renamed = Option<Result<(), FtpError>>;

/// The replies to [`renames`] of `renaming` (the held upload), when they were sent.
async fn read_renames(
    stream: &mut Control,
    renaming: Option<&Upload>,
    timeout: Duration,
) -> Result<Renamed, FtpError> {
    let Some(up) = renaming else {
        return Ok(None);
    };
    let chmod = match up.chmod {
        Some(mode) => {
            let command = PathCommand::SiteChmod(mode);
            match reply(stream, &command.line(&up.temp), command.success(), timeout).await {
                Err(e) if e.breaks_connection() => return Err(e),
                outcome => Some(outcome.map(|_| ())),
            }
        }
        None => None,
    };
    let from = reply(stream, "RNFR", &[Status::RequestFilePending], timeout).await;
    if from.as_ref().is_err_and(FtpError::breaks_connection) {
        return from.map(|_| None);
    }
    let ok = [Status::RequestedFileActionOk, Status::CommandOk];
    let to = reply(stream, "RNTO", &ok, timeout).await;
    from.and(to).map(|_| chmod)
}

/// The held upload's end, from its verdict and the replies to its renames.
fn stored(
    held: &Sent,
    verdict: Result<Option<Result<(), FtpError>>, UploadError>,
    renamed: Result<Renamed, FtpError>,
) -> Result<Stored, UploadError> {
    let time_set = verdict?;
    let chmod = renamed?;
    Ok(Stored {
        sent: held.sent,
        time_set,
        chmod,
    })
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

#[cfg(test)]
mod tests;
