//! Shared helpers for ftpsync's integration tests (`crate::support` in each test module).
//!
//! * [`FtpServer`]: an in-process FTP server (libunftp + filesystem back end) serving a fresh
//!   temporary folder on `127.0.0.1` with an ephemeral port. It runs on its own thread with its
//!   own tokio runtime, so it works from plain `#[test]` and `#[tokio::test]` functions alike,
//!   and stops when dropped.
//! * [`real_servers`]: the real FTP servers (vsftpd, pure-ftpd) named by `FTPSYNC_TEST_*`
//!   environment variables, with a per-test scratch folder on each.
//! * [`Tree`]: a temporary local folder with helpers to write, remove and re-date files.
//! * [`assert_mirror`], [`snapshot`] / [`changed_files`], [`tree_digest`]: checks on the result.
//! * [`ftpsync`]: the binary under test, with an environment isolated from the machine's;
//!   [`sync`] runs it with `--json` and returns a [`Run`] (exit code, output, parsed summary).

pub mod faults;

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// In-process FTP server
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Real FTP servers
// ---------------------------------------------------------------------------------------------

/// A real FTP server set up for the tests (see [`real_servers`]).
#[derive(Debug, Clone)]
pub struct RealServer {
    /// `"vsftpd"` or `"pure-ftpd"`.
    pub name: &'static str,
    /// URL of the login folder, with credentials, ending with `/`.
    pub url: String,
    /// The folder on this machine that the login folder is.
    pub root: PathBuf,
}

impl RealServer {
    /// A folder for one test on this server, so that parallel tests don't collide: removes
    /// `root/test_name` if it exists (left over from an earlier run) and returns its URL and
    /// local path. The folder is not created: ftpsync must create missing remote folders.
    pub fn scratch(&self, test_name: &str) -> (String, PathBuf) {
        let dir = self.root.join(test_name);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&dir),
            Ok(_) => fs::remove_file(&dir),
            Err(_) => Ok(()),
        }
        .unwrap_or_else(|err| {
            panic!(
                "{}: remove old scratch folder {}: {err}",
                self.name,
                dir.display()
            )
        });
        let base = self.url.trim_end_matches('/');
        (format!("{base}/{test_name}"), dir)
    }
}

const REAL_SERVER_VARS: [(&str, &str, &str); 2] = [
    (
        "vsftpd",
        "FTPSYNC_TEST_VSFTPD_URL",
        "FTPSYNC_TEST_VSFTPD_ROOT",
    ),
    (
        "pure-ftpd",
        "FTPSYNC_TEST_PUREFTPD_URL",
        "FTPSYNC_TEST_PUREFTPD_ROOT",
    ),
];

/// `host:port` of an `ftp://user:pw@host:port/path` URL, for a [`faults::FaultProxy`] in front.
pub fn host_port(url: &str) -> String {
    let after_login = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    let authority = after_login
        .split_once("://")
        .map_or(after_login, |(_, a)| a);
    authority.split('/').next().unwrap_or_default().to_string()
}

/// The real FTP servers named by `FTPSYNC_TEST_{VSFTPD,PUREFTPD}_{URL,ROOT}`.
///
/// A server whose two variables are not both set is left out, with a notice on stderr; with
/// `FTPSYNC_REQUIRE_REAL_SERVERS=1` a missing one is a panic instead.
pub fn real_servers() -> Vec<RealServer> {
    let required = std::env::var("FTPSYNC_REQUIRE_REAL_SERVERS").is_ok_and(|v| v == "1");
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (name, url_var, root_var) in REAL_SERVER_VARS {
        let url = std::env::var(url_var).ok().filter(|v| !v.is_empty());
        let root = std::env::var_os(root_var).filter(|v| !v.is_empty());
        match (url, root) {
            (Some(url), Some(root)) => {
                let url = if url.ends_with('/') {
                    url
                } else {
                    format!("{url}/")
                };
                found.push(RealServer {
                    name,
                    url,
                    root: PathBuf::from(root),
                });
            }
            _ => missing.push(format!("{name} ({url_var} and {root_var})")),
        }
    }
    if !missing.is_empty() {
        if required {
            panic!(
                "FTPSYNC_REQUIRE_REAL_SERVERS=1 but these real FTP servers are not configured: {}",
                missing.join(", ")
            );
        }
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            eprintln!(
                "notice: real-server tests skipped for {} (set the variables, or \
                 FTPSYNC_REQUIRE_REAL_SERVERS=1 to make this an error)",
                missing.join(", ")
            );
        });
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Local trees
// ---------------------------------------------------------------------------------------------

/// A temporary local folder to sync from. Paths given to its methods are relative to it.
pub struct Tree {
    pub dir: TempDir,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::Builder::new()
                .prefix("ftpsync-local-")
                .tempdir()
                .expect("create a local temp folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of `rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes the file `rel` (creating its parent folders) and returns its absolute path.
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|err| panic!("create {}: {err}", parent.display()));
        }
        fs::write(&path, bytes).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
        path
    }

    /// Creates the folder `rel` and its parents.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(&path).unwrap_or_else(|err| panic!("create {}: {err}", path.display()));
        path
    }

    /// Removes the file, symlink or folder (recursively) `rel`.
    pub fn remove(&self, rel: &str) {
        let path = self.join(rel);
        let meta = fs::symlink_metadata(&path)
            .unwrap_or_else(|err| panic!("remove {}: {err}", path.display()));
        if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .unwrap_or_else(|err| panic!("remove {}: {err}", path.display()));
    }

    /// Sets the modification time of `rel` (file or folder) to `unix_secs`.
    pub fn set_mtime(&self, rel: &str, unix_secs: u64) {
        set_mtime(&self.join(rel), unix_secs);
    }
}

/// Sets the modification time of `path` (file or folder) to `unix_secs`.
pub fn set_mtime(path: &Path, unix_secs: u64) {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(unix_secs);
    fs::File::open(path)
        .and_then(|file| file.set_modified(time))
        .unwrap_or_else(|err| panic!("set the mtime of {}: {err}", path.display()));
}

/// The modification time of `path` in whole seconds since the Unix epoch.
pub fn mtime(path: &Path) -> i64 {
    fs::metadata(path)
        .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()))
        .mtime()
}

// ---------------------------------------------------------------------------------------------
// Comparing trees
// ---------------------------------------------------------------------------------------------

/// Relative paths (with `/`) of everything under `dir`, except `dir` itself. Symlinks are not
/// followed into, but count as what they point to.
fn entries(dir: &Path) -> BTreeMap<String, PathBuf> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|entry| {
            let entry = entry.unwrap_or_else(|err| panic!("walk {}: {err}", dir.display()));
            let rel = entry
                .path()
                .strip_prefix(dir)
                .expect("walkdir stays under its root")
                .to_string_lossy()
                .into_owned();
            (rel, entry.into_path())
        })
        .collect()
}

fn kind(path: &Path) -> &'static str {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => "dir",
        Ok(meta) if meta.is_file() => "file",
        Ok(_) => "special file",
        Err(_) => "broken symlink",
    }
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// Panics with a readable list of differences unless `remote` is an exact mirror of `local`:
/// same relative paths, same kind (file or folder), same bytes.
pub fn assert_mirror(local: &Path, remote: &Path) {
    assert_mirror_except(local, remote, &[]);
}

/// Like [`assert_mirror`], skipping relative paths that start with one of `ignore` (e.g.
/// `".ftpsync"` also skips `.ftpsync.tmp`, `"cache/"` skips the folder `cache` and its content).
pub fn assert_mirror_except(local: &Path, remote: &Path, ignore: &[&str]) {
    let ignored = |rel: &str| {
        ignore
            .iter()
            .any(|prefix| rel.starts_with(prefix) || prefix.strip_suffix('/') == Some(rel))
    };
    let local_entries = entries(local);
    let remote_entries = if remote.exists() {
        entries(remote)
    } else {
        BTreeMap::new()
    };
    let mut problems = Vec::new();
    if !remote.is_dir() {
        problems.push(format!("remote folder {} does not exist", remote.display()));
    }
    for (rel, local_path) in &local_entries {
        if ignored(rel) {
            continue;
        }
        let Some(remote_path) = remote_entries.get(rel) else {
            problems.push(format!("only local: {rel}"));
            continue;
        };
        let (local_kind, remote_kind) = (kind(local_path), kind(remote_path));
        if local_kind != remote_kind {
            problems.push(format!(
                "kind: {rel} (local {local_kind}, remote {remote_kind})"
            ));
        } else if local_kind == "file" {
            let (l, r) = (read(local_path), read(remote_path));
            if l != r {
                problems.push(format!(
                    "differs: {rel} (local {} bytes, remote {} bytes)",
                    l.len(),
                    r.len()
                ));
            }
        }
    }
    for rel in remote_entries.keys() {
        if !ignored(rel) && !local_entries.contains_key(rel) {
            problems.push(format!("only remote: {rel}"));
        }
    }
    if !problems.is_empty() {
        panic!(
            "{} is not a mirror of {}:\n  {}",
            remote.display(),
            local.display(),
            problems.join("\n  ")
        );
    }
}

/// What a file looked like at one moment; any write changes `ctime_ns`, even when the mtime is
/// put back afterwards, and a replaced file has a new `ino`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    pub ino: u64,
    pub ctime_ns: i128,
    pub mtime_ns: i128,
}

/// A [`FileStamp`] for every file under `dir` (folders are left out), by relative path.
pub fn snapshot(dir: &Path) -> BTreeMap<String, FileStamp> {
    entries(dir)
        .into_iter()
        .filter_map(|(rel, path)| {
            let meta = fs::symlink_metadata(&path)
                .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()));
            meta.is_file().then(|| {
                let stamp = FileStamp {
                    len: meta.len(),
                    ino: meta.ino(),
                    ctime_ns: i128::from(meta.ctime()) * 1_000_000_000
                        + i128::from(meta.ctime_nsec()),
                    mtime_ns: i128::from(meta.mtime()) * 1_000_000_000
                        + i128::from(meta.mtime_nsec()),
                };
                (rel, stamp)
            })
        })
        .collect()
}

/// Files added, removed or touched in any way between two [`snapshot`]s, sorted.
pub fn changed_files(
    before: &BTreeMap<String, FileStamp>,
    after: &BTreeMap<String, FileStamp>,
) -> Vec<String> {
    let mut changed: Vec<String> = before
        .iter()
        .filter(|(rel, stamp)| after.get(*rel) != Some(stamp))
        .map(|(rel, _)| rel.clone())
        .collect();
    changed.extend(
        after
            .keys()
            .filter(|rel| !before.contains_key(*rel))
            .cloned(),
    );
    changed.sort();
    changed
}

/// One entry of a [`tree_digest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
}

/// Everything under `dir` with file contents, to check with `assert_eq!` that a tree was left
/// unchanged (trees in tests are small).
pub fn tree_digest(dir: &Path) -> BTreeMap<String, Node> {
    entries(dir)
        .into_iter()
        .map(|(rel, path)| {
            let meta = fs::symlink_metadata(&path)
                .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()));
            let node = if meta.is_symlink() {
                Node::Symlink(
                    fs::read_link(&path)
                        .unwrap_or_else(|err| panic!("readlink {}: {err}", path.display())),
                )
            } else if meta.is_dir() {
                Node::Dir
            } else {
                Node::File(read(&path))
            };
            (rel, node)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The binary under test
// ---------------------------------------------------------------------------------------------

/// A folder for the whole test process under `target/tmp/ftpsync-env/` (statics are never
/// dropped, so these are not removed at exit; folders left by runs over an hour old are).
fn kept_temp_dir(cell: &'static OnceLock<PathBuf>, prefix: &str) -> &'static Path {
    cell.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ftpsync-env");
        fs::create_dir_all(&parent).expect("create target/tmp/ftpsync-env");
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < an_hour_ago);
            if stale && entry.file_name().to_string_lossy().starts_with(prefix) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&parent)
            .expect("create a temp folder")
            .keep()
    })
}

/// The `XDG_STATE_HOME` that [`ftpsync`] commands get: one per test binary run, shared by its
/// tests (state is keyed by server URL, and each test uses its own server or scratch folder).
pub fn state_home() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    kept_temp_dir(&DIR, "state-")
}

/// The `HOME` that [`ftpsync`] commands get, so the machine's `~/.netrc` is never read.
pub fn fake_home() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    kept_temp_dir(&DIR, "home-")
}

/// The ftpsync binary, isolated from the machine by [`isolate_env`].
pub fn ftpsync() -> assert_cmd::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    isolate_env(&mut cmd);
    assert_cmd::Command::from_std(cmd)
}

/// Points `HOME`, `XDG_STATE_HOME`, `XDG_CONFIG_HOME` and `XDG_CACHE_HOME` at temp folders kept
/// for the whole test run, removes `NETRC`, `FTPSYNC_PASSWORD` and every other `FTPSYNC_*`
/// variable, and sets `NO_COLOR=1`.
pub fn isolate_env(cmd: &mut std::process::Command) {
    let home = fake_home();
    cmd.env("HOME", home)
        .env("XDG_STATE_HOME", state_home())
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("NO_COLOR", "1")
        .env_remove("NETRC")
        .env_remove("FTPSYNC_PASSWORD");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FTPSYNC_") {
            cmd.env_remove(name);
        }
    }
}

/// The outcome of one ftpsync run (see [`sync`] and [`run`]). `Display` shows all of it, for
/// assertion messages: `assert_eq!(run.code, 0, "{run}")`.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The last line of stdout parsed as JSON (the `--json` summary), or `Null`.
    pub summary: serde_json::Value,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ftpsync exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// How long one ftpsync run may take before [`run`] kills it (so a hang fails the test).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `ftpsync --json EXTRA... LOCAL URL` (isolated as [`ftpsync`] is) and collects the result.
pub fn sync(local: &Path, url: &str, extra: &[&str]) -> Run {
    let mut cmd = ftpsync();
    cmd.arg("--json").args(extra).arg(local).arg(url);
    run(&mut cmd)
}

/// Like [`sync`], with an empty state folder: no record of earlier runs.
pub fn sync_with_fresh_state(local: &Path, url: &str, extra: &[&str]) -> Run {
    let state = tempfile::tempdir().expect("create a state folder");
    let mut cmd = ftpsync();
    cmd.env("XDG_STATE_HOME", state.path())
        .arg("--json")
        .args(extra)
        .arg(local)
        .arg(url);
    run(&mut cmd)
}

/// Runs `cmd` (e.g. from [`ftpsync`], with more env or stdin set) with [`RUN_TIMEOUT`].
pub fn run(cmd: &mut assert_cmd::Command) -> Run {
    let output = cmd
        .timeout(RUN_TIMEOUT)
        .output()
        .unwrap_or_else(|err| panic!("run ftpsync: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let summary = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or(serde_json::Value::Null);
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        summary,
    }
}

/// Starts ftpsync with `args` and returns once it printed its first completed upload (`> ...`),
/// with its stdout for the rest; stderr is discarded.
pub fn spawn_until_first_upload(
    args: &[&std::ffi::OsStr],
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    isolate_env(&mut cmd);
    let mut child = cmd
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ftpsync");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    while !line.starts_with("> ") {
        line.clear();
        let n = stdout.read_line(&mut line).expect("read ftpsync's output");
        assert!(n > 0, "ftpsync ended before uploading");
    }
    (child, stdout)
}
