//! Listing a remote folder on a [`Connection`]: MLSD where the server has it, `LIST -a` (or
//! plain `LIST`) otherwise, and `STAT -a path` over the control connection where that gives the
//! same (always on LIST-only servers; on MLSD servers once a folder listed both ways agreed),
//! several folders' STATs in one write.
//!
//! A listing is bounded whatever the server sends: it is parsed as it arrives, only entries are
//! held, and it ends with [`FtpError::ListingTooLarge`] (never a truncated listing) past the
//! caps of [`ListingLimits`]: entries, memory, line length, and a deadline for the whole
//! listing (each read also waits at most `--timeout`, but a listing trickling one line at a time
//! would never end on that alone). STAT replies are bounded by suppaftp (256 KiB) and by
//! `--timeout` for the whole reply.

use std::time::Duration;

use suppaftp::Status;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::error::{within, FtpError, ListingCap};
use super::listing::{self, Caps, EntryKind, ListFormat, ListingParser, Parsed};
use super::{op, pipeline, Connection};

/// Whether `STAT -a` listings (LIST format, over the control connection) may stand in for MLSD
/// on a server that has both: found out once per run by listing a folder both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatForMlsd {
    Unknown,
    Trusted,
    Refused,
}

/// A folder's listing, parsed.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) parsed: Parsed,
    /// Listed both ways: whether the STAT listing told the same as MLSD (None: nothing to
    /// compare, e.g. an empty folder).
    pub(crate) stat_verdict: Option<bool>,
}

/// The bounds on one folder's listing over a data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListingLimits {
    /// Entries, memory and line length (see [`crate::ftp::listing::Caps`]).
    pub(crate) caps: Caps,
    /// The whole listing, from the command to the final reply.
    pub(crate) deadline: Duration,
}

/// The shortest listing deadline (see [`ListingLimits::for_timeout`]).
const MIN_DEADLINE: Duration = Duration::from_secs(300);

/// Overrides the listing deadline, in seconds: for tests, which cannot wait five minutes.
pub(crate) const DEADLINE_VAR: &str = "FTPSYNC_LISTING_DEADLINE_SECS";

impl ListingLimits {
    /// The default caps, and a deadline of 10 x `timeout`, at least 5 min ([`DEADLINE_VAR`]
    /// overrides it). `--timeout` bounds one wait on a silent server; a listing is many waits,
    /// and a large one on a slow link takes long: a million MLSD entries are about 130 MB,
    /// some 2 min at 1 MB/s. Five minutes cover that; 10 x `--timeout` keeps the margin for
    /// whoever raised `--timeout` for a slow server.
    pub(crate) fn for_timeout(timeout: Duration) -> Self {
        let deadline = std::env::var(DEADLINE_VAR)
            .ok()
            .and_then(|secs| secs.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or_else(|| (timeout * 10).max(MIN_DEADLINE));
        ListingLimits {
            caps: Caps::default(),
            deadline,
        }
    }
}

/// The replies to STAT that hold a listing. Not 211: suppaftp ends a 211 reply at its first
/// line (as FEAT needs), which would leave the listing unread on the connection.
const STAT_LISTING: [Status; 2] = [Status::Directory, Status::File];

/// The argument listing `path` with dot files: vsftpd hides them from a plain LIST.
fn with_a(path: &str) -> String {
    if path.is_empty() {
        "-a".to_string()
    } else {
        format!("-a {path}")
    }
}

/// The lines of a STAT reply between its own first and last lines, which frame the listing;
/// None for a reply of one line.
fn stat_inner(body: &[u8]) -> Option<Vec<&[u8]>> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    lines
        .get(1..lines.len().saturating_sub(1))
        .map(<[_]>::to_vec)
}

/// Whether a listing line is the entry "." (`ls -a`'s first line).
fn lists_dot(line: &[u8]) -> bool {
    line.trim_ascii_end().ends_with(b" .")
}

/// How a folder is named in errors.
fn folder_name(path: &str) -> String {
    if path.is_empty() {
        ".".into()
    } else {
        path.into()
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether the STAT listing `stat` tells the same as the MLSD listing `mlsd`.
/// When they agree, the MLSD entries take the link targets only the STAT lines show (pure-ftpd's
/// MLSD has `OS.unix=slink:` with no target).
fn compare_with_mlsd(stat: &Parsed, mlsd: &mut Parsed) -> Option<bool> {
    let clean = |p: &Parsed| p.errors.is_empty() && p.more_errors == 0;
    if !clean(stat) || !clean(mlsd) {
        return Some(false);
    }
    let agreed = listing::list_agrees_with_mlsd(&stat.entries, &mlsd.entries);
    if agreed == Some(true) {
        for entry in mlsd.entries.iter_mut().filter(|e| e.link.is_none()) {
            let shown = stat.entries.iter().find(|s| s.name == entry.name);
            entry.link = shown.and_then(|s| s.link.clone());
        }
    }
    agreed
}

/// A listing whose reading failed in a way that leaves nothing to wait for: past a cap, or a
/// server that stopped answering. Otherwise the final reply is read, and may say more.
fn ends_at_once(read: &Result<Parsed, FtpError>) -> bool {
    read.as_ref()
        .is_err_and(|e| e.is_listing_cap() || matches!(e, FtpError::Timeout { .. }))
}

/// A listing and its final reply as one outcome: both must be right. A data connection that
/// broke is an error whatever the final reply says (never a listing cut short), unless the
/// reply tells why (e.g. 550: no such folder, after a 150).
fn settle(read: Result<Parsed, FtpError>, done: Result<(), FtpError>) -> Result<Parsed, FtpError> {
    match (read, done) {
        (Ok(parsed), Ok(())) => Ok(parsed),
        (Err(_), Err(refused @ FtpError::Reply { .. })) => Err(refused),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

/// Reads a listing from its data connection, parsing each line as it arrives, within `caps`;
/// each wait for more bytes is bounded by `timeout`.
pub(crate) async fn read_listing<R: AsyncRead + Unpin>(
    data: R,
    folder: &str,
    format: ListFormat,
    caps: Caps,
    timeout: Duration,
    operation: &str,
) -> Result<Parsed, FtpError> {
    let too_large = |cap| FtpError::ListingTooLarge {
        folder: folder_name(folder),
        cap,
    };
    let mut parser = ListingParser::new(format, now_unix(), caps);
    let mut reader = BufReader::with_capacity(64 * 1024, data);
    // The start of a line that the last chunk cut.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let fill = async {
            reader
                .fill_buf()
                .await
                .map_err(suppaftp::FtpError::ConnectionError)
        };
        let chunk = within(timeout, operation, fill).await?;
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if partial.is_empty() {
                parser.push(&rest[..end]).map_err(too_large)?;
            } else {
                partial.extend_from_slice(&rest[..end]);
                parser.push(&partial).map_err(too_large)?;
                partial.clear();
            }
            rest = &rest[end + 1..];
        }
        // One byte for a CR before the LF.
        if partial.len() + rest.len() > caps.line_bytes + 1 {
            return Err(too_large(ListingCap::LineBytes(caps.line_bytes)));
        }
        partial.extend_from_slice(rest);
        reader.consume(len);
    }
    parser.push(&partial).map_err(too_large)?;
    let mut parsed = parser.finish();
    parsed.unterminated = !partial.trim_ascii().is_empty();
    Ok(parsed)
}

/// What `STAT -a path` may do for one listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatUse {
    /// Nothing: list over a data connection.
    No,
    /// Stand in for the data connection's listing.
    Instead,
    /// On an MLSD server not judged yet: list both ways, to compare.
    Compare,
}

impl Connection {
    /// Lists the folder `path` ("" for the login folder): MLSD where advertised, else `LIST -a`.
    ///
    /// `allow_stat`: the server may be asked for the listing over the control connection
    /// (`STAT -a path`, one round trip, no data connection). On a LIST-only server that is
    /// always the better listing; on an MLSD server only once `mlsd_stat` says its STAT listings
    /// were found to tell the same as MLSD. While that is [`StatForMlsd::Unknown`], a folder is
    /// listed both ways and [`Listing::stat_verdict`] tells whether they agreed.
    pub(crate) async fn list(
        &mut self,
        path: &str,
        allow_stat: bool,
        mlsd_stat: StatForMlsd,
    ) -> Result<Listing, FtpError> {
        self.keep_session_resumable().await?;
        let with_a = with_a(path);
        let stat = self.stat_use(path, allow_stat, mlsd_stat);
        let listing = |parsed| Listing {
            parsed,
            stat_verdict: None,
        };
        if stat == StatUse::Instead {
            if let Some(parsed) = self.list_by_stat(path, &with_a).await? {
                return Ok(listing(parsed));
            }
        }
        if self.features.mlsd {
            let parsed = self.list_with("MLSD", path, path, ListFormat::Mlsd).await?;
            let mut listed = listing(parsed);
            if stat == StatUse::Compare {
                listed.stat_verdict = match self.list_by_stat(path, &with_a).await? {
                    Some(stat) => compare_with_mlsd(&stat, &mut listed.parsed),
                    None => (self.stat_listing == Some(false)).then_some(false),
                };
            }
            return Ok(listed);
        }
        if !self.list_without_a {
            match self
                .list_with("LIST", &with_a, path, ListFormat::List)
                .await
            {
                Ok(parsed) => return self.not_misread(path, parsed).await.map(listing),
                Err(e) if e.code() == Some(501) || e.code() == Some(500) => {
                    self.list_without_a = true
                }
                Err(e) => return Err(e),
            }
        }
        let parsed = self.list_with("LIST", path, path, ListFormat::List).await?;
        self.not_misread(path, parsed).await.map(listing)
    }

    /// vsftpd answers `LIST -a path` with an empty listing where `path` is missing, and with
    /// one line describing `path` itself where it is a file or a folder it may not read: never
    /// to be taken as an empty folder, or one holding an entry of its own name. Such a listing
    /// is checked with another command: `STAT -a` (a folder, even an empty one or a genuine
    /// `a/a`, lists "." there), SIZE for a file (a file answers it). A folder that cannot be
    /// told apart counts as not listed.
    async fn not_misread(&mut self, path: &str, parsed: Parsed) -> Result<Parsed, FtpError> {
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let kind = match parsed.entries.as_slice() {
            _ if last.is_empty() => return Ok(parsed),
            [] if self.stat_sees_folder(path).await? == Some(false) => {
                return Err(FtpError::NoSuchFolder { path: path.into() })
            }
            [only] if only.name == last => only.kind,
            _ => return Ok(parsed),
        };
        match kind {
            EntryKind::File => match self.size(path).await {
                Ok(Some(_)) => Err(FtpError::NotAFolder { path: path.into() }),
                Err(e) if e.breaks_connection() => Err(e),
                _ => Ok(parsed),
            },
            EntryKind::Dir => match self.stat_sees_folder(path).await? {
                Some(true) => Ok(parsed),
                _ => Err(FtpError::Unreadable { path: path.into() }),
            },
            EntryKind::Symlink | EntryKind::Other => Ok(parsed),
        }
    }

    /// What `STAT -a path` says of the folder `path`, leaving how this connection lists alone:
    /// Some(true) when its listing holds "." (a folder it can read), Some(false) when it is a
    /// listing without "." (vsftpd: a missing or unreadable folder), None when the reply holds
    /// no listing at all.
    async fn stat_sees_folder(&mut self, path: &str) -> Result<Option<bool>, FtpError> {
        if path.contains(' ') {
            return Ok(None);
        }
        let argument = with_a(path);
        let exchange = (self.stream.ftp).custom_command(format!("STAT {argument}"), &STAT_LISTING);
        let reply = match within(self.timeout, op("STAT", &argument), exchange).await {
            Ok(reply) => reply,
            Err(e) if e.breaks_connection() => return Err(e),
            Err(_) => return Ok(None),
        };
        Ok(stat_inner(&reply.body).map(|inner| inner.iter().any(|l| lists_dot(l))))
    }

    /// What `STAT -a path` may do for the listing of `path` (see [`Connection::list`]): the
    /// one place that decides it.
    fn stat_use(&self, path: &str, allow_stat: bool, mlsd_stat: StatForMlsd) -> StatUse {
        let usable = allow_stat
            && self.stat_listing != Some(false)
            && !self.list_without_a
            && !path.contains(' ');
        match (usable, self.features.mlsd, mlsd_stat) {
            (false, _, _) => StatUse::No,
            (true, false, _) | (true, true, StatForMlsd::Trusted) => StatUse::Instead,
            (true, true, StatForMlsd::Unknown) => StatUse::Compare,
            (true, true, StatForMlsd::Refused) => StatUse::No,
        }
    }

    /// `STAT -a path`: a listing in the reply itself. None when the reply holds no listing
    /// (a server that does not list this way, or a missing folder): the caller then lists over a
    /// data connection. A server that has never answered with a listing is not asked again.
    async fn list_by_stat(
        &mut self,
        path: &str,
        argument: &str,
    ) -> Result<Option<Parsed>, FtpError> {
        let exchange = self
            .stream
            .ftp
            .custom_command(format!("STAT {argument}"), &STAT_LISTING);
        let reply = within(self.timeout, op("STAT", argument), exchange).await;
        self.stat_listing_in(path, reply)
    }

    /// The reply to a `STAT -a path` sent earlier, as [`Connection::list_by_stat`] returns it.
    async fn read_stat_reply(&mut self, path: &str) -> Result<Option<Parsed>, FtpError> {
        let read = self.stream.ftp.read_response_in(&STAT_LISTING);
        let reply = within(self.timeout, op("STAT", &with_a(path)), read).await;
        self.stat_listing_in(path, reply)
    }

    /// The listing a STAT reply holds, if it holds one (see [`Connection::list_by_stat`]).
    fn stat_listing_in(
        &mut self,
        path: &str,
        reply: Result<suppaftp::types::Response, FtpError>,
    ) -> Result<Option<Parsed>, FtpError> {
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) if e.breaks_connection() => return Err(e),
            Err(_) => {
                self.stat_listing = Some(false);
                return Ok(None);
            }
        };
        // `-a` always lists ".".
        let inner = stat_inner(&reply.body).unwrap_or_default();
        if !inner.iter().any(|l| lists_dot(l)) {
            self.stat_misses += 1;
            if self.stat_listing.is_none() && self.stat_misses >= 2 {
                self.stat_listing = Some(false);
            }
            return Ok(None);
        }
        self.stat_listing = Some(true);
        let mut parser = ListingParser::new(ListFormat::List, now_unix(), self.listing_limits.caps);
        for line in inner {
            parser
                .push(line.trim_ascii_start())
                .map_err(|cap| FtpError::ListingTooLarge {
                    folder: folder_name(path),
                    cap,
                })?;
        }
        Ok(Some(parser.finish()))
    }

    /// Lists several folders: where this connection already lists with STAT, their `STAT -a`
    /// commands go in one write (one round trip for all of them) and only the folders STAT
    /// cannot list are listed afterwards over data connections; otherwise one after the other
    /// as [`Connection::list`] does. The results are in the order of `paths`.
    pub(crate) async fn list_many(
        &mut self,
        paths: &[String],
        allow_stat: bool,
        mlsd_stat: StatForMlsd,
    ) -> Vec<Result<Listing, FtpError>> {
        // In one write only where STAT listings are known to work here.
        let batch = paths.len() > 1 && self.can_pipeline() && self.stat_listing == Some(true);
        let mut results: Vec<Option<Result<Listing, FtpError>>> =
            paths.iter().map(|_| None).collect();
        if batch {
            let by_stat: Vec<(usize, &String)> = paths
                .iter()
                .enumerate()
                .filter(|(_, path)| self.stat_use(path, allow_stat, mlsd_stat) == StatUse::Instead)
                .collect();
            let commands: String = by_stat
                .iter()
                .map(|(_, path)| format!("STAT {}\r\n", with_a(path)))
                .collect();
            let mut broken = self.stream.send(&commands, self.timeout).await.err();
            for (i, path) in &by_stat {
                if broken.is_some() {
                    break;
                }
                match self.read_stat_reply(path).await {
                    Ok(Some(parsed)) => {
                        results[*i] = Some(Ok(Listing {
                            parsed,
                            stat_verdict: None,
                        }))
                    }
                    Ok(None) => {}
                    Err(e) => broken = Some(e),
                }
            }
            if let Some(e) = broken {
                // The replies still due are lost with the connection.
                return results
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(e.clone())))
                    .collect();
            }
        }
        let mut out = Vec::with_capacity(paths.len());
        for (path, result) in paths.iter().zip(results) {
            out.push(match result {
                Some(listed) => listed,
                None => self.list(path, allow_stat, mlsd_stat).await,
            });
        }
        out
    }

    /// `verb argument` over a data connection, the listing of `folder` parsed as it arrives: on
    /// plain FTP with the command sent while the data connection opens (one round trip less),
    /// else through suppaftp. Bounded by [`ListingLimits`] as a whole.
    async fn list_with(
        &mut self,
        verb: &str,
        argument: &str,
        folder: &str,
        format: ListFormat,
    ) -> Result<Parsed, FtpError> {
        let (limits, timeout) = (self.listing_limits, self.timeout);
        let command = op(verb, argument);
        let pipelined = self.can_pipeline();
        let stream = &mut self.stream;
        let exchange = async {
            if pipelined {
                let mut data = pipeline::open_listing(stream, &command, timeout).await?;
                let caps = limits.caps;
                let read = read_listing(&mut data, folder, format, caps, timeout, &command);
                let parsed = read.await;
                drop(data);
                if !ends_at_once(&parsed) {
                    let done = &pipeline::TRANSFER_DONE;
                    let reply = pipeline::reply(stream, &command, done, timeout).await;
                    return settle(parsed, reply.map(|_| ()));
                }
                return parsed;
            }
            let opening = [Status::AboutToSend, Status::AlreadyOpen];
            let open = stream.ftp.custom_data_command(&command, &opening);
            let (_, mut data) = within(timeout, command.as_str(), open).await?;
            let read = read_listing(&mut data, folder, format, limits.caps, timeout, &command);
            let parsed = read.await;
            if !ends_at_once(&parsed) {
                let reply = within(timeout, command.as_str(), data.finish()).await;
                return settle(parsed, reply);
            }
            parsed
        };
        match tokio::time::timeout(limits.deadline, exchange).await {
            Ok(listed) => listed,
            // Abandoned half-way: the connection goes with it (see `breaks_connection`).
            Err(_) => Err(FtpError::ListingTooLarge {
                folder: folder_name(folder),
                cap: ListingCap::Duration(limits.deadline),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(entries: usize) -> Caps {
        Caps {
            entries,
            ..Caps::default()
        }
    }

    async fn read(data: impl AsyncRead + Unpin, caps: Caps) -> Result<Parsed, FtpError> {
        let timeout = Duration::from_secs(5);
        read_listing(data, "/d", ListFormat::Mlsd, caps, timeout, "MLSD /d").await
    }

    #[tokio::test]
    async fn a_listing_is_parsed_across_chunks_with_or_without_a_last_line_end() {
        let text = b"type=file;size=1; a\r\ntype=dir; b\ntype=cdir; .\r\ntype=file;size=2; c";
        // A reader that hands out two bytes at a time cuts every line.
        let (client, mut server) = tokio::io::duplex(2);
        let writer =
            tokio::spawn(
                async move { tokio::io::AsyncWriteExt::write_all(&mut server, text).await },
            );
        let parsed = read(client, caps(10)).await.unwrap();
        writer.await.unwrap().unwrap();
        let names: Vec<_> = parsed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        // Read, but not trusted as whole: the last line may have been cut.
        assert!(parsed.unterminated && !parsed.is_complete());
        let whole = read(&b"type=file;size=1; a\r\n"[..], caps(10))
            .await
            .unwrap();
        assert!(whole.is_complete());
        let garbled = read(&b"type=file;size=-5; a\r\n"[..], caps(10))
            .await
            .unwrap();
        assert!(
            !garbled.is_complete(),
            "an unreadable line leaves the folder unknown"
        );
    }

    #[tokio::test]
    async fn a_line_that_never_ends_or_too_many_lines_end_the_listing_with_an_error() {
        let err = read(tokio::io::repeat(b'x'), caps(10)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "listing of remote folder \"/d\" exceeded 65536 bytes in one line; the folder counts as not listed"
        );
        assert!(err.is_listing_cap() && err.breaks_connection() && !err.is_permanent());
        let lines = b"type=file;size=1; x\r\n".repeat(11);
        let err = read(&lines[..], caps(10)).await.unwrap_err();
        assert!(err.to_string().contains("exceeded 10 entries"), "{err}");
    }

    #[test]
    fn a_broken_data_connection_is_an_error_even_when_the_server_says_226() {
        let lost = || FtpError::Connection {
            operation: "MLSD /d".into(),
            detail: "reset".into(),
        };
        let refused = FtpError::Reply {
            operation: "MLSD /d".into(),
            code: 550,
            text: "550 No such folder".into(),
        };
        assert!(settle(Err(lost()), Ok(())).is_err());
        assert_eq!(
            settle(Err(lost()), Err(refused)).unwrap_err().code(),
            Some(550)
        );
        assert!(settle(Ok(Parsed::default()), Ok(())).is_ok());
    }
}
