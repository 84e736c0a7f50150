//! The two kinds of channel a connection talks through, the same over plain FTP and over TLS:
//! the control channel ([`Control`]: suppaftp's stream, plus a way to write several commands
//! without waiting for their replies) and the data channels ([`open_data`]: plain TCP, or TLS
//! resuming the control connection's session).
//!
//! suppaftp owns the control connection's TLS stream and writes only one command at a time to
//! it. Pipelined commands therefore wait in an [`Outbox`] that the stream itself empties, before
//! anything else it reads or writes: whoever sends commands reads a reply next (or writes
//! another command), so they leave at once and in order. On plain FTP the pipeline writes to the
//! socket directly.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use suppaftp::tokio::{ImplAsyncFtpStream, TokioTlsStream};
use suppaftp::tokio_rustls::client::TlsStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use super::error::{within, FtpError};
use super::tls::Connector;

/// suppaftp's control stream, with [`ControlTls`] as its TLS stream.
pub(crate) type Stream = ImplAsyncFtpStream<ControlTls>;

/// A data connection: plain, or TLS.
pub(crate) type Data = Either<TcpStream, TlsStream<TcpStream>>;

/// A control connection as the pipeline uses it.
pub(crate) struct Control {
    pub(crate) ftp: Stream,
    /// With TLS: where pipelined commands wait (see the module's header).
    outbox: Option<Outbox>,
    /// With TLS: how data connections are secured.
    data_tls: Option<DataTls>,
}

impl Control {
    /// A plain control connection (`tls` None), or one secured with `tls`, whose first stream
    /// was this control connection's.
    pub(crate) fn new(ftp: Stream, tls: Option<(Connector, String)>) -> Control {
        let outbox = tls.as_ref().and_then(|(c, _)| c.control_outbox());
        Control {
            ftp,
            outbox,
            data_tls: tls.map(|(connector, domain)| DataTls { connector, domain }),
        }
    }

    /// Writes `commands` (each ending with CRLF) without waiting for replies: to the socket on
    /// plain FTP; over TLS into the outbox, which the next read or write empties.
    pub(crate) async fn send(&self, commands: &str, timeout: Duration) -> Result<(), FtpError> {
        refuse_line_breaks(commands)?;
        match (&self.outbox, &self.data_tls) {
            (Some(outbox), _) => {
                outbox.push(commands.as_bytes());
                Ok(())
            }
            (None, None) => {
                super::pipeline::write_all(&*self.ftp.get_ref().await, commands, timeout).await
            }
            // Never written in clear text to a TLS connection's socket.
            (None, Some(_)) => Err(FtpError::Connection {
                operation: super::pipeline::first_word(commands).into(),
                detail: "the TLS control stream has no outbox".into(),
            }),
        }
    }

    /// How this connection's data connections are secured (None: plain).
    pub(crate) fn data_tls(&self) -> Option<DataTls> {
        self.data_tls.clone()
    }

    /// Whether the control connection is secured.
    pub(crate) fn is_tls(&self) -> bool {
        self.data_tls.is_some()
    }
}

/// One command per CRLF: a line break inside a path would smuggle in another command.
fn refuse_line_breaks(commands: &str) -> Result<(), FtpError> {
    if commands
        .split_terminator("\r\n")
        .any(|c| c.contains(['\r', '\n']))
    {
        return Err(FtpError::Connection {
            operation: super::pipeline::first_word(commands).into(),
            detail: "a path contains a line break".into(),
        });
    }
    Ok(())
}

/// What secures a connection's data connections: its connector (whose session cache they
/// resume) and the server's name.
#[derive(Clone)]
pub(crate) struct DataTls {
    connector: Connector,
    domain: String,
}

/// Connects to the passive address `addr` and, with `tls`, secures the connection (the server
/// handshakes once it has read the transfer command, which must be on its way). Bounded by
/// `timeout` per step.
pub(crate) async fn open_data(
    addr: SocketAddr,
    operation: &str,
    tls: Option<&DataTls>,
    timeout: Duration,
) -> Result<Data, FtpError> {
    let connect = async {
        TcpStream::connect(addr)
            .await
            .map_err(suppaftp::FtpError::ConnectionError)
    };
    let data = within(timeout, operation.to_string(), connect).await?;
    data.set_nodelay(true).ok();
    let Some(tls) = tls else {
        return Ok(Either::Left(data));
    };
    let handshake = tls.connector.handshake(&tls.domain, data);
    let secured = within(timeout, operation.to_string(), handshake).await?;
    Ok(Either::Right(secured))
}

/// Commands written by the pipeline, waiting for the control stream to send them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outbox(Arc<Mutex<Vec<u8>>>);

impl Outbox {
    fn push(&self, bytes: &[u8]) {
        self.lock().extend_from_slice(bytes);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves whole commands or none: still consistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The outbox of the first stream a connector secures (its control connection's).
#[derive(Debug, Clone, Default)]
pub(crate) struct FirstOutbox(Arc<OnceLock<Outbox>>);

impl FirstOutbox {
    /// A new stream's outbox; the first one is kept.
    pub(crate) fn register(&self) -> Outbox {
        let outbox = Outbox::default();
        let _ = self.0.set(outbox.clone());
        outbox
    }

    pub(crate) fn get(&self) -> Option<Outbox> {
        self.0.get().cloned()
    }
}

/// A TLS stream that sends its outbox before anything else it reads or writes.
#[derive(Debug)]
pub(crate) struct ControlTls {
    tls: TlsStream<TcpStream>,
    outbox: Outbox,
}

impl ControlTls {
    pub(crate) fn new(tls: TlsStream<TcpStream>, outbox: Outbox) -> ControlTls {
        ControlTls { tls, outbox }
    }

    /// Sends what waits in the outbox, then flushes.
    fn poll_outbox(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut pending = self.outbox.lock();
        if pending.is_empty() {
            return Poll::Ready(Ok(()));
        }
        while !pending.is_empty() {
            let n = ready!(Pin::new(&mut self.tls).poll_write(cx, &pending))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            pending.drain(..n);
        }
        drop(pending);
        Pin::new(&mut self.tls).poll_flush(cx)
    }
}

impl AsyncRead for ControlTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        ready!(self.poll_outbox(cx))?;
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for ControlTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.poll_outbox(cx))?;
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_outbox(cx))?;
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

impl TokioTlsStream for ControlTls {
    type InnerStream = TlsStream<TcpStream>;

    fn tcp_stream(self) -> suppaftp::FtpResult<TcpStream> {
        Ok(self.tls.into_inner().0)
    }

    fn get_ref(&self) -> &TcpStream {
        self.tls.get_ref().0
    }

    fn mut_ref(&mut self) -> &mut Self::InnerStream {
        &mut self.tls
    }
}

#[cfg(test)]
mod tests;
