//! One FTP control connection: connect (securing it with TLS for `ftpes://` and `ftps://`), log
//! in, and the few commands a sync needs, each bounded by a timeout. Wraps suppaftp and turns its
//! errors into [`FtpError`]s that say whether a retry can help and whether the connection is
//! still usable.
//!
//! This folder is the protocol layer and knows nothing of plans, jobs or workers: [`target`]
//! (the URL), [`tls`], [`error`], [`list`] with [`listing`] (reading and parsing folder
//! listings), for uploads [`pipeline`] (commands without waiting), [`chain`] (uploads chained
//! on one connection) and [`data`] (a file's bytes on the data connection, paced by
//! [`bwlimit`]), and for ftpsync's own small files [`remote_file`] (in memory, capped) and
//! [`digest`] (hashes by the server); for pulls, [`download`] (a file's bytes into a local
//! file).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use suppaftp::{Mode, Status};
use tokio::io::AsyncSeekExt;

use bwlimit::Bandwidth;
use channel::{Control, Stream};
use data::send_bytes;
pub(crate) use data::Meter;
pub(crate) use data::Sent;

pub(crate) use error::{secure_detail, within};
pub(crate) use error::{FtpError, UploadError};
use target::{Scheme, Target};
use tls::{Connector, Tickets, TlsConfig, TlsOptions};

mod batch;
pub(crate) mod bwlimit;
pub(crate) mod chain;
mod channel;
pub(crate) mod data;
pub(crate) mod digest;
pub(crate) mod download;
pub(crate) mod error;
mod list;
pub(crate) mod listing;
mod login;
pub(crate) mod pipeline;
pub(crate) mod remote_file;
pub(crate) mod target;
pub(crate) mod tls;

pub(crate) use batch::PathCommand;
pub(crate) use list::{ListingLimits, StatForMlsd};

/// What the FTP session logs in with (found by `crate::credentials`). No password ever reaches
/// a message or a `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Login {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// What the server said it supports in FEAT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Features {
    pub(crate) mlsd: bool,
    pub(crate) mfmt: bool,
    pub(crate) size: bool,
    /// How the server computes a file's hash (`HASH`, `XSHA256`...), if it can.
    pub(crate) hash: Option<digest::HashCommand>,
}

/// How this server lets a client set a file's modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSetter {
    /// `MFMT YYYYMMDDhhmmss path` (RFC draft, pure-ftpd, proftpd).
    Mfmt,
    /// `MDTM YYYYMMDDhhmmss path` (vsftpd with mdtm_write).
    MdtmWrite,
    /// `SITE UTIME YYYYMMDDhhmmss path`.
    SiteUtime,
}

impl TimeSetter {
    /// The command setting `path`'s time to `unix` seconds (UTC).
    pub(crate) fn command(self, unix: i64, path: &str) -> String {
        let stamp = format_mdtm(unix);
        match self {
            TimeSetter::Mfmt => format!("MFMT {stamp} {path}"),
            TimeSetter::MdtmWrite => format!("MDTM {stamp} {path}"),
            TimeSetter::SiteUtime => format!("SITE UTIME {stamp} {path}"),
        }
    }

    /// Candidates to probe, most standard first, given what FEAT said.
    pub(crate) fn candidates(features: Features) -> &'static [TimeSetter] {
        if features.mfmt {
            &[TimeSetter::Mfmt]
        } else {
            &[TimeSetter::MdtmWrite, TimeSetter::SiteUtime]
        }
    }
}

/// One logged-in control connection, in binary mode.
pub(crate) struct Connection {
    stream: Control,
    timeout: Duration,
    /// What FEAT advertised.
    pub(crate) features: Features,
    /// Whether `LIST -a` (show dot files) is refused, so plain LIST must be used.
    list_without_a: bool,
    /// With TLS: the tickets the data connections resume the session with.
    tickets: Option<Tickets>,
    /// To log in again when the TLS 1.3 tickets run out.
    target: Target,
    login: Login,
    /// Commands may be pipelined (see [`Connection::can_pipeline`]).
    pipelining: bool,
    /// Whether `STAT -a path` lists folders: None until a reply told.
    stat_listing: Option<bool>,
    /// STAT replies without a listing so far.
    stat_misses: u32,
    /// The bounds on a listing over a data connection.
    listing_limits: ListingLimits,
    /// The folder the server put the session in (PWD at login; None if it would not say).
    login_folder: Option<String>,
}

impl Connection {
    /// Connects (with TLS for `ftpes://` and `ftps://`), logs in, switches to binary mode and
    /// reads FEAT, each step within `timeout`.
    pub(crate) async fn open(
        target: &Target,
        login: &Login,
        timeout: Duration,
    ) -> Result<Self, FtpError> {
        let server = format!("{}:{}", target.host, target.port);
        let unreachable = |detail: String| FtpError::Unreachable {
            server: server.clone(),
            detail,
        };
        let addrs = within(timeout, "resolving the host", async {
            tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|e| unreachable(e.to_string()))
        })
        .await?;
        let addrs: Vec<_> = addrs.collect();
        let tls = match (target.scheme.is_tls(), &target.tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls.clone()),
            (true, None) => {
                Some(
                    TlsConfig::load(&TlsOptions::default()).map_err(|e| FtpError::Tls {
                        server: server.clone(),
                        detail: e.to_string(),
                    })?,
                )
            }
        };
        // One connector (one session cache) for the control connection and its data connections.
        let connector = tls.as_ref().map(TlsConfig::connector);
        let mut last = unreachable("no address found".into());
        let mut stream = None;
        for addr in addrs {
            match connect(target, connector.as_ref(), addr, timeout).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                // The server answered, but not with 220 (421: too many connections).
                Err(e @ suppaftp::FtpError::UnexpectedResponse(_)) => {
                    return Err(FtpError::from_suppa("connect".into(), e));
                }
                Err(suppaftp::FtpError::SecureError(detail)) => {
                    return Err(FtpError::Tls {
                        server,
                        detail: secure_detail(&detail).to_string(),
                    });
                }
                Err(e) => last = unreachable(e.to_string()),
            }
        }
        let mut stream = stream.ok_or(last)?;
        if let Some(connector) = &connector {
            stream = secure(stream, target, connector, &server, timeout).await?;
        }
        if target.host.contains(':') {
            stream.set_mode(Mode::ExtendedPassive);
        } else {
            // Connect data channels to the control connection's address: immune to servers behind
            // NAT advertising private addresses, and to PASV replies pointing elsewhere.
            stream.set_passive_nat_workaround(true);
        }
        let tls_data = connector.clone().map(|c| (c, target.host.clone()));
        let mut conn = Connection {
            stream: Control::new(stream, tls_data),
            timeout,
            features: Features::default(),
            list_without_a: false,
            tickets: connector.as_ref().map(Connector::tickets),
            target: target.clone(),
            login: login.clone(),
            // PASV replies are read by the pipeline itself; IPv6 needs EPSV, left to suppaftp.
            pipelining: !target.host.contains(':'),
            stat_listing: None,
            stat_misses: 0,
            listing_limits: ListingLimits::for_timeout(timeout),
            login_folder: None,
        };
        // Commands are small writes answered by small replies: Nagle's algorithm would only
        // add delay.
        let _ = conn.stream.ftp.get_ref().await.set_nodelay(true);
        conn.log_in(login).await?;
        Ok(conn)
    }

    /// Before a data connection: logs in again when the TLS 1.3 tickets are used up, since
    /// vsftpd and proftpd refuse a data connection that does not resume the session. The first
    /// time, the rest of the run switches to TLS 1.2 (see [`crate::ftp::tls`]).
    async fn keep_session_resumable(&mut self) -> Result<(), FtpError> {
        if !self.tickets.as_ref().is_some_and(Tickets::used_up) {
            return Ok(());
        }
        if let Some(tls) = &self.target.tls {
            if tls.tickets_ran_out() {
                tracing::info!(
                    "the server renews no TLS 1.3 session tickets; using TLS 1.2 from now on"
                );
            }
        }
        tracing::debug!("TLS session tickets used up; logging in again");
        // Log out first, so as not to count twice against the server's connection limit. Should
        // logging in again fail, the error says the connection is lost.
        let _ = tokio::time::timeout(self.timeout, self.stream.ftp.quit()).await;
        let (list_without_a, limits) = (self.list_without_a, self.listing_limits);
        *self = Connection::open(&self.target, &self.login, self.timeout).await?;
        self.list_without_a = list_without_a;
        self.listing_limits = limits;
        Ok(())
    }

    /// Creates the folder `path`.
    pub(crate) async fn mkdir(&mut self, path: &str) -> Result<(), FtpError> {
        within(self.timeout, op("MKD", path), self.stream.ftp.mkdir(path)).await
    }

    /// Creates `path` and its missing parents. A refusal (550) is taken to mean "exists": a
    /// folder that really could not be made shows up as a failure of what goes into it.
    pub(crate) async fn mkdir_all(&mut self, path: &str) -> Result<(), FtpError> {
        let ends = path.match_indices('/').map(|(i, _)| i).chain([path.len()]);
        for prefix in ends
            .map(|i| &path[..i])
            .filter(|p| !p.is_empty() && !p.ends_with('/'))
        {
            match self.mkdir(prefix).await {
                Err(e) if !e.is_permanent() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes the file `path`.
    pub(crate) async fn delete(&mut self, path: &str) -> Result<(), FtpError> {
        within(self.timeout, op("DELE", path), self.stream.ftp.rm(path)).await
    }

    /// Removes the empty folder `path`.
    pub(crate) async fn rmdir(&mut self, path: &str) -> Result<(), FtpError> {
        within(self.timeout, op("RMD", path), self.stream.ftp.rmdir(path)).await
    }

    /// Stores the local file `local` at `path`, from byte `offset` on (appended with APPE when
    /// `offset` > 0); returns the bytes sent, counted in `progress` as they go, no faster than
    /// `limit` allows. Each wait on the network (opening, every chunk, the final reply) is
    /// bounded by the timeout.
    pub(crate) async fn upload(
        &mut self,
        path: &str,
        local: &Path,
        offset: u64,
        progress: Option<&Sent>,
        limit: Option<&Bandwidth>,
    ) -> Result<u64, UploadError> {
        self.keep_session_resumable().await?;
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(UploadError::Local)?;
        let operation = op(if offset > 0 { "APPE" } else { "STOR" }, path);
        let mut data = if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(UploadError::Local)?;
            let open = self.stream.ftp.append_with_stream(path);
            within(self.timeout, operation.clone(), open).await?
        } else {
            let open = self.stream.ftp.put_with_stream(path);
            within(self.timeout, operation.clone(), open).await?
        };
        // On a local read error the stream is dropped unfinished; suppaftp reads the
        // transfer's reply before the next command, so the connection stays in sync.
        let meter = Meter {
            progress: progress.map(|p| &**p),
            limit,
        };
        let sent = send_bytes(&mut file, &mut data, self.timeout, &operation, meter).await?;
        within(self.timeout, operation, data.finish()).await?;
        Ok(sent)
    }

    /// The size of the remote file `path` (SIZE), or None when the server has no SIZE.
    pub(crate) async fn size(&mut self, path: &str) -> Result<Option<u64>, FtpError> {
        if !self.features.size {
            return Ok(None);
        }
        let size = within(self.timeout, op("SIZE", path), self.stream.ftp.size(path)).await?;
        Ok(Some(size as u64))
    }

    /// Renames `from` to `to` (RNFR/RNTO).
    pub(crate) async fn rename(&mut self, from: &str, to: &str) -> Result<(), FtpError> {
        within(
            self.timeout,
            op("RNFR", from),
            self.stream.ftp.rename(from, to),
        )
        .await
    }

    /// Sets the modification time of `path` to `unix` seconds (UTC) with `how`.
    pub(crate) async fn set_mtime(
        &mut self,
        path: &str,
        unix: i64,
        how: TimeSetter,
    ) -> Result<(), FtpError> {
        let command = how.command(unix, path);
        let operation = op(command.split(' ').next().unwrap_or("MFMT"), path);
        // 213 for MFMT and MDTM, 200 for SITE; some servers answer 250.
        let accepted = [
            Status::File,
            Status::CommandOk,
            Status::RequestedFileActionOk,
        ];
        let send = self.stream.ftp.custom_command(command, &accepted);
        within(self.timeout, operation, send).await.map(|_| ())
    }

    /// Whether commands may be pipelined on this connection: not after pipelining misbehaved,
    /// and over TLS 1.3 only while a ticket is left for the next data connection (without one,
    /// the one-at-a-time path logs in again first).
    pub(crate) fn can_pipeline(&self) -> bool {
        self.pipelining && !self.tickets.as_ref().is_some_and(Tickets::used_up)
    }

    /// Whether two more transfers may be pipelined, the one under way and the next (see
    /// [`crate::ftp::download::Behind::Next`]): neither may need a fresh login for its data
    /// connection.
    pub(crate) fn can_pipeline_two(&self) -> bool {
        self.pipelining && self.tickets.as_ref().is_none_or(|t| t.enough_for(2))
    }

    /// An atomic upload with its commands pipelined (see [`crate::ftp::pipeline`]). A server that
    /// answers out of step gets no more pipelining on this connection.
    pub(crate) async fn store_pipelined(
        &mut self,
        up: chain::Upload,
    ) -> Result<chain::Stored, UploadError> {
        let result = chain::store(&mut self.stream, up, self.timeout).await;
        if let Err(UploadError::Remote(e)) = &result {
            self.notice_garbled(e);
        }
        result
    }

    /// Begins a chain's first upload (see [`chain::start`]).
    pub(crate) async fn chain_start(
        &mut self,
        up: chain::Upload,
        early: chain::Early,
    ) -> chain::Started {
        let started = chain::start(&mut self.stream, up, early, self.timeout).await;
        self.notice_failure(&started.sent);
        started
    }

    /// Ends a chain's held upload with no next one (see [`chain::finish`]).
    pub(crate) async fn chain_finish(&mut self, held: chain::Sent) -> chain::Finished {
        let finished = chain::finish(&mut self.stream, held, self.timeout).await;
        self.notice_failure(&finished.stored);
        finished
    }

    /// Ends a chain's held upload while the next one starts (see [`chain::finish_and_start`]).
    pub(crate) async fn chain_finish_and_start(
        &mut self,
        held: chain::Sent,
        next: chain::Upload,
        early: chain::Early,
    ) -> chain::Handover {
        let handover =
            chain::finish_and_start(&mut self.stream, held, next, early, self.timeout).await;
        self.notice_failure(&handover.stored);
        self.notice_failure(&handover.started.sent);
        handover
    }

    /// A chained upload's failure: garbled replies end pipelining on this connection.
    fn notice_failure<T>(&mut self, result: &Result<T, UploadError>) {
        if let Err(UploadError::Remote(e)) = result {
            self.notice_garbled(e);
        }
    }

    /// Replies that make no sense where they came: no more pipelining on this connection.
    fn notice_garbled(&mut self, e: &FtpError) {
        if matches!(e, FtpError::Garbled { .. }) {
            self.pipelining = false;
        }
    }

    /// Where this connection leads: the server's address as connected, and the login folder
    /// (PWD, asked at login; None when the server would not say). What a folder *is*, whatever
    /// the URL's text.
    pub(crate) async fn whereabouts(&mut self) -> (Option<std::net::SocketAddr>, Option<String>) {
        let addr = self.stream.ftp.get_ref().await.peer_addr().ok();
        (addr, self.login_folder.clone())
    }

    /// Says goodbye; errors are irrelevant at this point. On plain FTP without waiting for the
    /// answer: the server closes the connection either way.
    pub(crate) async fn quit(mut self) {
        if self.can_pipeline() && !self.stream.is_tls() {
            let _ = self.stream.send("QUIT\r\n", self.timeout).await;
            return;
        }
        let _ = tokio::time::timeout(self.timeout, self.stream.ftp.quit()).await;
    }
}

/// Opens the control connection to `addr` and reads the greeting: over TLS from the first byte
/// for `ftps://`, in clear text otherwise. Bounded by `timeout` as a whole.
async fn connect(
    target: &Target,
    tls: Option<&Connector>,
    addr: SocketAddr,
    timeout: Duration,
) -> suppaftp::FtpResult<Stream> {
    let open = async {
        match tls {
            Some(connector) if target.scheme == Scheme::Ftps => {
                Stream::connect_secure_implicit(addr, connector.clone(), &target.host).await
            }
            _ => Stream::connect_timeout(addr, timeout).await,
        }
    };
    let hint = match target.scheme {
        Scheme::Ftps => "",
        // A port that waits for a TLS handshake says nothing to a clear-text client.
        Scheme::Ftp | Scheme::Ftpes => {
            " (if the port expects TLS from the first byte, use ftps://)"
        }
    };
    tokio::time::timeout(timeout, open)
        .await
        .unwrap_or_else(|_| {
            Err(suppaftp::FtpError::ConnectionError(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no greeting within {} s{hint}", timeout.as_secs()),
            )))
        })
}

/// Secures a fresh connection: `ftpes://` with AUTH TLS (after which suppaftp sends PBSZ 0 and
/// PROT P), `ftps://` (already TLS) with PBSZ 0 and PROT P, so that data connections are
/// encrypted too. Anything but success is an error: there is no falling back to clear text.
async fn secure(
    stream: Stream,
    target: &Target,
    connector: &Connector,
    server: &str,
    timeout: Duration,
) -> Result<Stream, FtpError> {
    let tls_error = |detail: String| FtpError::Tls {
        server: server.to_string(),
        detail,
    };
    let mut stream = if target.scheme == Scheme::Ftpes {
        let auth = stream.into_secure(connector.clone(), &target.host);
        match tokio::time::timeout(timeout, auth).await {
            Ok(Ok(secured)) => secured,
            Ok(Err(suppaftp::FtpError::SecureError(detail))) => {
                return Err(tls_error(secure_detail(&detail).to_string()))
            }
            Ok(Err(e)) => match FtpError::from_suppa("AUTH TLS".into(), e) {
                FtpError::Reply { code, text, .. } if code != 421 => {
                    return Err(tls_error(format!(
                        "the server refused AUTH TLS ({text}), so it offers no explicit TLS; \
                         try ftps:// if it offers implicit TLS (port 990)"
                    )))
                }
                other => return Err(other),
            },
            Err(_) => {
                return Err(FtpError::Timeout {
                    operation: "AUTH TLS".into(),
                    secs: timeout.as_secs(),
                })
            }
        }
    } else {
        stream
    };
    // ftpes:// sent these already; implicit TLS needs them too, or the server may insist
    // on clear-text data connections (vsftpd: 522).
    if target.scheme == Scheme::Ftps {
        for command in ["PBSZ 0", "PROT P"] {
            let send = stream.custom_command(command, &[Status::CommandOk]);
            within(timeout, command, send).await.map_err(|e| match e {
                FtpError::Reply { text, .. } => {
                    tls_error(format!("the server refused {command} ({text})"))
                }
                other => other,
            })?;
        }
    }
    Ok(stream)
}

fn op(command: &str, path: &str) -> String {
    if path.is_empty() {
        command.to_string()
    } else {
        format!("{command} {path}")
    }
}

/// `YYYYMMDDhhmmss` in UTC, as MFMT and MDTM use.
pub(crate) fn format_mdtm(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdtm_stamp_is_utc() {
        assert_eq!(format_mdtm(0), "19700101000000");
        assert_eq!(format_mdtm(1_704_164_645), "20240102030405");
    }
}
