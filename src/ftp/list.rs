//! Listing a remote folder on a [`Connection`]: MLSD where the server has it, `LIST -a` (or
//! plain `LIST`) otherwise, and `STAT -a path` over the control connection where that gives the
//! same (always on LIST-only servers; on MLSD servers once a folder listed both ways agreed),
//! several folders' STATs in one write.

use suppaftp::Status;

use super::{op, within, Connection, FtpError};
use crate::listing::{self, ListFormat};
use crate::pipeline;

/// Whether `STAT -a` listings (LIST format, over the control connection) may stand in for MLSD
/// on a server that has both: found out once per run by listing a folder both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatForMlsd {
    Unknown,
    Trusted,
    Refused,
}

/// A folder's listing as the server sent it.
#[derive(Debug)]
pub struct Listing {
    pub lines: Vec<String>,
    pub format: ListFormat,
    /// Listed both ways: whether the STAT listing told the same as MLSD (None: nothing to
    /// compare, e.g. an empty folder).
    pub stat_verdict: Option<bool>,
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

/// Whether the STAT listing `stat_lines` tells the same as the MLSD listing `mlsd_lines`.
fn compare_with_mlsd(stat_lines: &[String], mlsd_lines: &[String]) -> Option<bool> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (list, list_errors) = listing::parse_listing(stat_lines, ListFormat::List, now);
    let (mlsd, mlsd_errors) = listing::parse_listing(mlsd_lines, ListFormat::Mlsd, now);
    if !list_errors.is_empty() || !mlsd_errors.is_empty() {
        return Some(false);
    }
    listing::list_agrees_with_mlsd(&list, &mlsd)
}

impl Connection {
    /// Lists the folder `path` ("" for the login folder): MLSD where advertised, else `LIST -a`.
    ///
    /// `allow_stat`: the server may be asked for the listing over the control connection
    /// (`STAT -a path`, one round trip, no data connection). On a LIST-only server that is
    /// always the better listing; on an MLSD server only once `mlsd_stat` says its STAT listings
    /// were found to tell the same as MLSD. While that is [`StatForMlsd::Unknown`], a folder is
    /// listed both ways and [`Listing::stat_verdict`] tells whether they agreed.
    pub async fn list(
        &mut self,
        path: &str,
        allow_stat: bool,
        mlsd_stat: StatForMlsd,
    ) -> Result<Listing, FtpError> {
        self.keep_session_resumable().await?;
        let with_a = with_a(path);
        let stat_usable = allow_stat
            && self.stat_listing != Some(false)
            && !self.list_without_a
            && !path.contains(' ');
        let listing = |lines, format| Listing {
            lines,
            format,
            stat_verdict: None,
        };
        if self.features.mlsd {
            if stat_usable && mlsd_stat == StatForMlsd::Trusted {
                if let Some(lines) = self.list_by_stat(&with_a).await? {
                    return Ok(listing(lines, ListFormat::List));
                }
            }
            let lines = self.list_with("MLSD", path).await?;
            let mut listed = listing(lines, ListFormat::Mlsd);
            if stat_usable && mlsd_stat == StatForMlsd::Unknown {
                listed.stat_verdict = match self.list_by_stat(&with_a).await? {
                    Some(stat_lines) => compare_with_mlsd(&stat_lines, &listed.lines),
                    None => (self.stat_listing == Some(false)).then_some(false),
                };
            }
            return Ok(listed);
        }
        if !self.list_without_a {
            if stat_usable {
                if let Some(lines) = self.list_by_stat(&with_a).await? {
                    return Ok(listing(lines, ListFormat::List));
                }
            }
            match self.list_with("LIST", &with_a).await {
                Ok(lines) => return Ok(listing(lines, ListFormat::List)),
                Err(e) if e.code() == Some(501) || e.code() == Some(500) => {
                    self.list_without_a = true
                }
                Err(e) => return Err(e),
            }
        }
        let lines = self.list_with("LIST", path).await?;
        Ok(listing(lines, ListFormat::List))
    }

    /// `STAT -a path`: a listing in the reply itself. None when the reply holds no listing
    /// (a server that does not list this way, or a missing folder): the caller then lists over a
    /// data connection. A server that has never answered with a listing is not asked again.
    async fn list_by_stat(&mut self, argument: &str) -> Result<Option<Vec<String>>, FtpError> {
        let exchange = self
            .stream
            .custom_command(format!("STAT {argument}"), &STAT_LISTING);
        let reply = within(self.timeout, op("STAT", argument), exchange).await;
        self.stat_listing_in(reply)
    }

    /// The reply to a `STAT argument` sent earlier, as [`Connection::list_by_stat`] returns it.
    async fn read_stat_reply(&mut self, argument: &str) -> Result<Option<Vec<String>>, FtpError> {
        let read = self.stream.read_response_in(&STAT_LISTING);
        let reply = within(self.timeout, op("STAT", argument), read).await;
        self.stat_listing_in(reply)
    }

    /// The listing a STAT reply holds, if it holds one (see [`Connection::list_by_stat`]).
    fn stat_listing_in(
        &mut self,
        reply: Result<suppaftp::types::Response, FtpError>,
    ) -> Result<Option<Vec<String>>, FtpError> {
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) if e.breaks_connection() => return Err(e),
            Err(_) => {
                self.stat_listing = Some(false);
                return Ok(None);
            }
        };
        let text = String::from_utf8_lossy(&reply.body);
        let lines: Vec<&str> = text.lines().collect();
        // The reply's own first and last lines frame the listing; `-a` always lists ".".
        let inner = lines
            .get(1..lines.len().saturating_sub(1))
            .unwrap_or_default();
        if !inner.iter().any(|l| l.trim_end().ends_with(" .")) {
            self.stat_misses += 1;
            if self.stat_listing.is_none() && self.stat_misses >= 2 {
                self.stat_listing = Some(false);
            }
            return Ok(None);
        }
        self.stat_listing = Some(true);
        Ok(Some(
            inner.iter().map(|l| l.trim_start().to_string()).collect(),
        ))
    }

    /// Lists several folders: where this connection already lists with STAT, their `STAT -a`
    /// commands go in one write (one round trip for all of them) and only the folders STAT
    /// cannot list are listed afterwards over data connections; otherwise one after the other
    /// as [`Connection::list`] does. The results are in the order of `paths`.
    pub async fn list_many(
        &mut self,
        paths: &[String],
        allow_stat: bool,
        mlsd_stat: StatForMlsd,
    ) -> Vec<Result<Listing, FtpError>> {
        let batch = paths.len() > 1
            && allow_stat
            && self.can_pipeline()
            && self.stat_listing == Some(true)
            && !self.list_without_a
            && (!self.features.mlsd || mlsd_stat == StatForMlsd::Trusted);
        let mut results: Vec<Option<Result<Listing, FtpError>>> =
            paths.iter().map(|_| None).collect();
        if batch {
            let by_stat: Vec<(usize, String)> = paths
                .iter()
                .enumerate()
                .filter(|(_, path)| !path.contains(' '))
                .map(|(i, path)| (i, with_a(path)))
                .collect();
            let commands: String = by_stat
                .iter()
                .map(|(_, argument)| format!("STAT {argument}\r\n"))
                .collect();
            let mut broken = pipeline::send(&self.stream, &commands, self.timeout)
                .await
                .err();
            for (i, argument) in &by_stat {
                if broken.is_some() {
                    break;
                }
                match self.read_stat_reply(argument).await {
                    Ok(Some(lines)) => {
                        results[*i] = Some(Ok(Listing {
                            lines,
                            format: ListFormat::List,
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

    /// `verb argument` over a data connection: on plain FTP with the command sent while the
    /// data connection opens (one round trip less), else through suppaftp.
    async fn list_with(&mut self, verb: &str, argument: &str) -> Result<Vec<String>, FtpError> {
        if self.can_pipeline() {
            return pipeline::list(&mut self.stream, verb, argument, self.timeout).await;
        }
        let arg = (!argument.is_empty()).then_some(argument);
        let operation = op(verb, argument);
        if verb == "MLSD" {
            within(self.timeout, operation, self.stream.mlsd(arg)).await
        } else {
            within(self.timeout, operation, self.stream.list(arg)).await
        }
    }
}
