//! In-process FTPS servers: libunftp with explicit TLS, behind a TLS front for implicit TLS;
//! and a [`Recorder`] that relays a control port and keeps every byte the client sent.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use libunftp::options::{FtpsRequired, TlsFlags};
use suppaftp::tokio_rustls::TlsAcceptor;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::pki::Pki;
use super::Mode;

/// A tokio runtime on its own thread serving one listener on 127.0.0.1, until dropped.
struct Background {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    fn start<F, Fut>(serve: F) -> Background
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a tokio runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                tokio::select! {
                    () = serve(listener) => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        });
        let port = port_rx.recv().expect("server thread started");
        Background {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// libunftp's defaults: TLS 1.2, resumption with session IDs and tickets.
pub(super) const DEFAULT_FLAGS: TlsFlags = TlsFlags::V1_2
    .union(TlsFlags::RESUMPTION_SESS_ID)
    .union(TlsFlags::RESUMPTION_TICKETS);

/// libunftp with FTPS (any login accepted), serving a temporary folder.
///
/// libunftp knows only explicit TLS; for implicit TLS a front terminates TLS on the control
/// port and relays the clear text to libunftp, whose data connections still use TLS (PROT P).
pub(super) struct FtpsServer {
    mode: Mode,
    root: TempDir,
    /// Control connections accepted.
    accepted: Arc<AtomicUsize>,
    server: Background,
    /// The libunftp behind the implicit front.
    _inner: Option<Background>,
}

impl FtpsServer {
    pub(super) fn start(pki: &Pki, mode: Mode) -> FtpsServer {
        Self::start_with(pki, mode, DEFAULT_FLAGS, "server")
    }

    /// With TLS `flags` and the certificate `cert` (`server` or `self-signed`).
    pub(super) fn start_with(pki: &Pki, mode: Mode, flags: TlsFlags, cert: &str) -> FtpsServer {
        let root = tempfile::tempdir().expect("create the server's root");
        let root_path = root.path().to_path_buf();
        let (cert, key) = (
            pki.path(&format!("{cert}.pem")),
            pki.path(&format!("{cert}.key")),
        );
        // Behind the implicit front, the control channel arrives in clear text.
        let control = if mode == Mode::Explicit {
            FtpsRequired::All
        } else {
            FtpsRequired::None
        };
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let unftp = Background::start(move |listener| {
            serve_unftp(listener, root_path, (cert, key), flags, control, count)
        });
        let (server, inner) = match mode {
            Mode::Explicit => (unftp, None),
            Mode::Implicit => {
                let (acceptor, inner) = (pki.acceptor(), unftp.port);
                let front = Background::start(move |l| implicit_front(l, inner, acceptor));
                (front, Some(unftp))
            }
        };
        FtpsServer {
            mode,
            root,
            accepted,
            server,
            _inner: inner,
        }
    }

    pub(super) fn port(&self) -> u16 {
        self.server.port
    }

    /// `ftpes://` or `ftps://test:secret@127.0.0.1:PORT/path`.
    pub(super) fn url(&self, path: &str) -> String {
        let scheme = match self.mode {
            Mode::Explicit => "ftpes",
            Mode::Implicit => "ftps",
        };
        format!("{scheme}://test:secret@127.0.0.1:{}/{path}", self.port())
    }

    pub(super) fn remote_dir(&self, path: &str) -> PathBuf {
        self.root.path().join(path)
    }

    /// Control connections the server accepted so far.
    pub(super) fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn serve_unftp(
    listener: TcpListener,
    root: PathBuf,
    (cert, key): (String, String),
    flags: TlsFlags,
    control: FtpsRequired,
    accepted: Arc<AtomicUsize>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let root = root.clone();
        let server = libunftp::ServerBuilder::new(Box::new(move || {
            unftp_sbe_fs::Filesystem::new(root.clone()).expect("open the server's root")
        }))
        .ftps(cert.clone(), key.clone())
        .ftps_tls_flags(flags)
        .ftps_required(control, FtpsRequired::All)
        .passive_ports(0..=0)
        .build()
        .expect("build the libunftp server");
        tokio::spawn(async move {
            let _ = server.service(stream).await;
        });
    }
}

/// Implicit FTPS: TLS from the first byte on `listener`, clear text to libunftp on `inner`.
async fn implicit_front(listener: TcpListener, inner: u16, acceptor: TlsAcceptor) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut client) = acceptor.accept(client).await else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", inner)).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

/// A TCP relay in front of a control port that records every byte the client sends.
pub(super) struct Recorder {
    sent: Arc<Mutex<Vec<u8>>>,
    relay: Background,
}

impl Recorder {
    pub(super) fn start(upstream: u16) -> Recorder {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&sent);
        let relay = Background::start(move |listener| async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = relay(client, server, record).await;
                    }
                });
            }
        });
        Recorder { sent, relay }
    }

    pub(super) fn port(&self) -> u16 {
        self.relay.port
    }

    /// Everything clients sent so far, on all connections, in arrival order.
    pub(super) fn sent(&self) -> Vec<u8> {
        self.sent.lock().unwrap().clone()
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    record: Arc<Mutex<Vec<u8>>>,
) -> io::Result<()> {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                return server_write.shutdown().await;
            }
            record.lock().unwrap().extend_from_slice(&buf[..n]);
            server_write.write_all(&buf[..n]).await?;
        }
    };
    let down = async {
        tokio::io::copy(&mut server_read, &mut client_write).await?;
        client_write.shutdown().await
    };
    let (a, b) = tokio::join!(up, down);
    a.and(b)
}
