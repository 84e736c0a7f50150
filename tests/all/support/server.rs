//! [`FtpServer`]: an in-process FTP server (libunftp + filesystem back end) serving a fresh
//! temporary folder on `127.0.0.1` with an ephemeral port, optionally behind a gate that checks
//! the login; with counters of the control connections it accepted.

use std::future::Future;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// User name that [`FtpServer::url`] puts in URLs.
pub const TEST_USER: &str = "test";
/// Password that [`FtpServer::url`] puts in URLs.
pub const TEST_PASSWORD: &str = "secret";

/// Connection counters shared between a test and its server thread.
#[derive(Default)]
struct Counters {
    /// Set once the readiness probe (the first connection) has been accepted.
    probed: std::sync::atomic::AtomicBool,
    total: AtomicUsize,
    active: AtomicUsize,
    peak: AtomicUsize,
}

impl Counters {
    /// Counts a new connection, unless it is the readiness probe; returns whether it counted.
    fn opened(&self) -> bool {
        if !self.probed.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.total.fetch_add(1, Ordering::SeqCst);
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        true
    }

    fn closed(&self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An FTP server serving [`FtpServer::root`] on `127.0.0.1:`[`FtpServer::port`].
///
/// Passive data connections bind port 0 (the OS picks a free port), so any number of these
/// servers can run in parallel without port clashes.
pub struct FtpServer {
    /// The control port, on 127.0.0.1.
    pub port: u16,
    /// The folder the server serves: the FTP root `/` (and the login folder).
    pub root: TempDir,
    /// Login used by [`FtpServer::url`].
    pub user: String,
    /// Password used by [`FtpServer::url`].
    pub password: String,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FtpServer {
    /// Starts a server that accepts any user name and password. [`FtpServer::url`] still puts
    /// `test:secret` in URLs.
    pub fn start() -> FtpServer {
        Self::spawn(TEST_USER, TEST_PASSWORD, false)
    }

    /// Starts a server that accepts only `user` with `password`: any other login gets
    /// `530 Invalid credentials` in reply to `PASS`. [`FtpServer::url`] uses that login.
    pub fn start_with_auth(user: &str, password: &str) -> FtpServer {
        Self::spawn(user, password, true)
    }

    fn spawn(user: &str, password: &str, check_login: bool) -> FtpServer {
        let root = tempfile::Builder::new()
            .prefix("ftpsync-server-")
            .tempdir()
            .expect("create the FTP server's root folder");
        let root_path = root.path().to_path_buf();
        let counters = Arc::new(Counters::default());
        let login = check_login.then(|| (user.to_string(), password.to_string()));

        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<u16>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("ftp-test-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build the FTP server's tokio runtime");
                runtime.block_on(async move {
                    let listener = match TcpListener::bind("127.0.0.1:0").await {
                        Ok(listener) => listener,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let port = listener.local_addr().map(|a| a.port());
                    let work: Pin<Box<dyn Future<Output = ()>>> = match login {
                        None => Box::pin(serve(listener, root_path, Some(thread_counters))),
                        Some(login) => {
                            // libunftp's Authenticator trait lives in unftp-core, which is not a
                            // dependency of this crate; so libunftp (accepting any login) listens
                            // on an internal port and a small gate in front of it checks PASS.
                            let inner = match TcpListener::bind("127.0.0.1:0").await {
                                Ok(inner) => inner,
                                Err(err) => {
                                    let _ = ready_tx.send(Err(err));
                                    return;
                                }
                            };
                            let inner_addr = inner.local_addr().expect("internal listener address");
                            Box::pin(async move {
                                tokio::join!(
                                    serve(inner, root_path, None),
                                    gate(listener, inner_addr, login, thread_counters)
                                );
                            })
                        }
                    };
                    let _ = ready_tx.send(port);
                    tokio::select! {
                        () = work => {}
                        _ = stop_rx => {}
                    }
                });
                // Drops every connection still open; waits a little for file writes in flight.
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .expect("spawn the FTP server thread");

        let port = match ready_rx.recv() {
            Ok(Ok(port)) => port,
            Ok(Err(err)) => panic!("FTP test server could not bind 127.0.0.1:0: {err}"),
            Err(_) => panic!("FTP test server thread died before binding its port"),
        };
        let server = FtpServer {
            port,
            root,
            user: user.to_string(),
            password: password.to_string(),
            counters,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        server.wait_for_greeting();
        server
    }

    /// Confirms the server answers: connects and reads the `220` greeting. This probe is the
    /// first connection the server accepts, which the counters leave out.
    fn wait_for_greeting(&self) {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|err| panic!("connect to the FTP test server at {addr}: {err}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        let mut greeting = String::new();
        BufReader::new(&stream)
            .read_line(&mut greeting)
            .unwrap_or_else(|err| panic!("read the FTP test server's greeting: {err}"));
        assert!(
            greeting.starts_with("220"),
            "unexpected greeting from the FTP test server: {greeting:?}"
        );
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    /// `127.0.0.1:PORT`, e.g. for `suppaftp::tokio::AsyncFtpStream::connect`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `ftp://USER:PASSWORD@127.0.0.1:PORT/path`, with `path` relative to the server root
    /// (a leading `/` is ignored). `url("")` is the root itself.
    pub fn url(&self, path: &str) -> String {
        self.url_with(&self.user, Some(&self.password), path)
    }

    /// Like [`FtpServer::url`] with another login; `password: None` leaves it out of the URL
    /// (`ftp://USER@127.0.0.1:PORT/path`). Nothing is percent-encoded.
    pub fn url_with(&self, user: &str, password: Option<&str>, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match password {
            Some(password) => format!("ftp://{user}:{password}@127.0.0.1:{}/{path}", self.port),
            None => format!("ftp://{user}@127.0.0.1:{}/{path}", self.port),
        }
    }

    /// The local folder behind the remote `path` (relative to the server root).
    pub fn remote_dir(&self, path: &str) -> PathBuf {
        self.root.path().join(path.trim_start_matches('/'))
    }

    /// Control connections accepted since the server started.
    pub fn connections(&self) -> usize {
        self.counters.total.load(Ordering::SeqCst)
    }

    /// The most control connections that were open at the same time.
    pub fn peak_connections(&self) -> usize {
        self.counters.peak.load(Ordering::SeqCst)
    }

    /// Control connections open right now.
    pub fn open_connections(&self) -> usize {
        self.counters.active.load(Ordering::SeqCst)
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Don't turn a failing test's panic into an abort by panicking again.
            let _ = thread.join();
        }
    }
}

/// Serves FTP on `listener` with libunftp, one `Server::service` per accepted connection.
async fn serve(listener: TcpListener, root: PathBuf, counters: Option<Arc<Counters>>) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let root = root.clone();
        let server = libunftp::ServerBuilder::new(Box::new(move || {
            unftp_sbe_fs::Filesystem::new(root.clone()).expect("open the FTP server's root")
        }))
        // Port 0: the OS picks a free port for every passive data connection, so parallel
        // test servers never compete for the same range.
        .passive_ports(0..=0)
        .build()
        .expect("build the libunftp server");
        let counters = counters.clone().filter(|counters| counters.opened());
        tokio::spawn(async move {
            let _ = server.service(stream).await;
            if let Some(counters) = counters {
                counters.closed();
            }
        });
    }
}

/// Accepts clients on `listener` and relays each to the libunftp server at `inner`, answering
/// `PASS` itself with `530` (and not relaying it) unless the login is `login`.
async fn gate(
    listener: TcpListener,
    inner: SocketAddr,
    login: (String, String),
    counters: Arc<Counters>,
) {
    let login = Arc::new(login);
    loop {
        let Ok((client, _peer)) = listener.accept().await else {
            continue;
        };
        let login = login.clone();
        let counters = counters.clone();
        let counted = counters.opened();
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(inner).await {
                let _ = relay(client, server, &login).await;
            }
            if counted {
                counters.closed();
            }
        });
    }
}

async fn relay(client: TcpStream, server: TcpStream, login: &(String, String)) -> io::Result<()> {
    let (client_read, client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));

    let to_client = {
        let client_write = client_write.clone();
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut server_read, &mut buf).await?;
                let mut out = client_write.lock().await;
                if n == 0 {
                    return out.shutdown().await;
                }
                out.write_all(&buf[..n]).await?;
            }
        }
    };

    let to_server = async move {
        let mut lines = tokio::io::BufReader::new(client_read);
        let mut user = String::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if lines.read_until(b'\n', &mut line).await? == 0 {
                return server_write.shutdown().await;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
            if verb.eq_ignore_ascii_case("USER") {
                user = arg.to_string();
            } else if verb.eq_ignore_ascii_case("PASS") && (user != login.0 || arg != login.1) {
                client_write
                    .lock()
                    .await
                    .write_all(b"530 Invalid credentials\r\n")
                    .await?;
                continue;
            }
            server_write.write_all(&line).await?;
        }
    };

    let (a, b) = tokio::join!(to_client, to_server);
    a.and(b)
}
