//! FTPS: explicit (`ftpes://`) and implicit (`ftps://`) TLS against an in-process libunftp server
//! whose certificate comes from a throw-away CA made here; the refusals (untrusted certificate,
//! no TLS on the server, a TLS version the server lacks); proof that the password never crosses
//! the wire in clear text; and the real servers started by `scripts/test-servers.sh` (vsftpd and
//! proftpd, both refusing data connections that do not resume the control connection's TLS
//! session), in both modes and both TLS versions.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use libunftp::options::{FtpsRequired, TlsFlags};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use suppaftp::tokio_rustls::TlsAcceptor;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{assert_mirror, changed_files, snapshot, sync, FtpServer, RealServer, Tree};

/// The warning `--insecure` prints on every run.
const INSECURE_WARNING: &str =
    "ftpsync: warning: TLS certificate verification is disabled (--insecure)";

// ---------------------------------------------------------------------------------------------
// A throw-away CA
// ---------------------------------------------------------------------------------------------

/// A CA, a server certificate for 127.0.0.1 and localhost signed by it, an unrelated CA, and a
/// self-signed server certificate made as a CA (as `openssl req -x509` does), as PEM files in a
/// temporary folder.
struct Pki {
    dir: TempDir,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("create a folder for certificates");
        let ca = Self::ca("ftpsync test CA", vec![]);
        let other = Self::ca("some other CA", vec![]);
        let self_signed = Self::ca("self-signed server", vec!["127.0.0.1".into()]);
        let key = KeyPair::generate().expect("generate a server key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server certificate parameters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &ca)
            .expect("sign the server certificate");
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other.pem()),
            ("server.pem", cert.pem()),
            ("server.key", key.serialize_pem()),
            ("self-signed.pem", self_signed.pem()),
            ("self-signed.key", self_signed.key().serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write a PEM file");
        }
        Pki {
            dir,
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }

    fn ca(name: &str, alt_names: Vec<String>) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(alt_names).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("generate a CA key");
        CertifiedIssuer::self_signed(params, key).expect("self-sign the CA")
    }

    /// `ca.pem`, `other-ca.pem`, `server.pem`, `server.key`, `self-signed.pem` or `.key`.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .expect("server TLS configuration");
        TlsAcceptor::from(Arc::new(config))
    }
}

// ---------------------------------------------------------------------------------------------
// In-process servers
// ---------------------------------------------------------------------------------------------

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
const DEFAULT_FLAGS: TlsFlags = TlsFlags::V1_2
    .union(TlsFlags::RESUMPTION_SESS_ID)
    .union(TlsFlags::RESUMPTION_TICKETS);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// AUTH TLS on the control port (`ftpes://`).
    Explicit,
    /// TLS from the first byte (`ftps://`).
    Implicit,
}

/// libunftp with FTPS (any login accepted), serving a temporary folder.
///
/// libunftp knows only explicit TLS; for implicit TLS a front terminates TLS on the control
/// port and relays the clear text to libunftp, whose data connections still use TLS (PROT P).
struct FtpsServer {
    mode: Mode,
    root: TempDir,
    /// Control connections accepted.
    accepted: Arc<AtomicUsize>,
    server: Background,
    /// The libunftp behind the implicit front.
    _inner: Option<Background>,
}

impl FtpsServer {
    fn start(pki: &Pki, mode: Mode) -> FtpsServer {
        Self::start_with(pki, mode, DEFAULT_FLAGS, "server")
    }

    /// With TLS `flags` and the certificate `cert` (`server` or `self-signed`).
    fn start_with(pki: &Pki, mode: Mode, flags: TlsFlags, cert: &str) -> FtpsServer {
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

    fn port(&self) -> u16 {
        self.server.port
    }

    /// `ftpes://` or `ftps://test:secret@127.0.0.1:PORT/path`.
    fn url(&self, path: &str) -> String {
        let scheme = match self.mode {
            Mode::Explicit => "ftpes",
            Mode::Implicit => "ftps",
        };
        format!("{scheme}://test:secret@127.0.0.1:{}/{path}", self.port())
    }

    fn remote_dir(&self, path: &str) -> PathBuf {
        self.root.path().join(path)
    }

    /// Control connections the server accepted so far.
    fn connections(&self) -> usize {
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
struct Recorder {
    sent: Arc<Mutex<Vec<u8>>>,
    relay: Background,
}

impl Recorder {
    fn start(upstream: u16) -> Recorder {
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

    fn port(&self) -> u16 {
        self.relay.port
    }

    /// Everything clients sent so far, on all connections, in arrival order.
    fn sent(&self) -> Vec<u8> {
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

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Files of assorted sizes in a few folders, one larger than a TLS record many times over.
fn site_tree(files: usize) -> Tree {
    let tree = Tree::new();
    for i in 0..files {
        let bytes: Vec<u8> = (0..i * 97 % 20_000).map(|b| (b * 31 + i) as u8).collect();
        tree.write(&format!("dir{}/file{i}.bin", i % 10), bytes);
    }
    tree.write("empty.txt", b"");
    tree.write("big/large.bin", vec![0xa5u8; 3 * 1024 * 1024 + 7]);
    tree
}

// ---------------------------------------------------------------------------------------------
// In-process tests
// ---------------------------------------------------------------------------------------------

#[test]
fn explicit_and_implicit_tls_mirror_a_tree_with_8_workers() {
    let pki = Pki::new();
    for mode in [Mode::Explicit, Mode::Implicit] {
        let server = FtpsServer::start(&pki, mode);
        let tree = site_tree(60);
        let ca = pki.path("ca.pem");
        let args = ["-j", "8", "--ca-file", &ca];
        let run = sync(tree.path(), &server.url("site"), &args);
        assert_eq!(run.code, 0, "{mode:?}: {run}");
        assert_eq!(run.summary["files_uploaded"], 62, "{mode:?}: {run}");
        assert_mirror(tree.path(), &server.remote_dir("site"));
        assert!(
            server.connections() >= 8,
            "{mode:?}: 8 workers, 8 connections"
        );

        let before = snapshot(&server.remote_dir("site"));
        let rerun = sync(tree.path(), &server.url("site"), &args);
        assert_eq!(rerun.code, 0, "{mode:?}: {rerun}");
        assert_eq!(rerun.summary["files_uploaded"], 0, "{mode:?}: {rerun}");
        let after = snapshot(&server.remote_dir("site"));
        assert_eq!(changed_files(&before, &after), Vec::<String>::new());
    }
}

#[test]
fn the_tls_option_secures_an_ftp_url() {
    let pki = Pki::new();
    for (mode, option) in [(Mode::Explicit, "explicit"), (Mode::Implicit, "implicit")] {
        let server = FtpsServer::start(&pki, mode);
        let tree = site_tree(5);
        let url = format!("ftp://test:secret@127.0.0.1:{}/site", server.port());
        let ca = pki.path("ca.pem");
        let run = sync(tree.path(), &url, &["--tls", option, "--ca-file", &ca]);
        assert_eq!(run.code, 0, "--tls {option}: {run}");
        assert_mirror(tree.path(), &server.remote_dir("site"));
    }
}

#[test]
fn an_untrusted_certificate_fails_with_exit_2_naming_the_host_the_reason_and_both_options() {
    let pki = Pki::new();
    let server = FtpsServer::start(&pki, Mode::Explicit);
    let tree = site_tree(3);
    let other_ca = pki.path("other-ca.pem");
    // The system's trust store alone, then a CA that did not sign the certificate.
    for extra in [&[][..], &["--ca-file", &other_ca]] {
        let run = sync(tree.path(), &server.url("site"), extra);
        assert_eq!(run.code, 2, "{extra:?}: {run}");
        let message = run.stderr.trim();
        assert_eq!(message.lines().count(), 1, "one line: {run}");
        for part in [
            "127.0.0.1",
            "certificate cannot be trusted",
            "not signed by an authority",
            "--ca-file",
            "--insecure",
        ] {
            assert!(message.contains(part), "{part:?} missing: {message}");
        }
        assert!(!message.contains("secret"), "{message}");
        assert!(!server.remote_dir("site").exists(), "nothing may be done");
    }
}

#[test]
fn a_self_signed_server_certificate_in_ca_file_is_trusted() {
    let pki = Pki::new();
    let server = FtpsServer::start_with(&pki, Mode::Explicit, DEFAULT_FLAGS, "self-signed");
    let tree = site_tree(5);
    let run = sync(tree.path(), &server.url("site"), &[]);
    assert_eq!(run.code, 2, "not without --ca-file: {run}");
    let pinned = pki.path("self-signed.pem");
    let run = sync(tree.path(), &server.url("site"), &["--ca-file", &pinned]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir("site"));
}

#[test]
fn insecure_skips_verification_and_says_so_on_every_run() {
    let pki = Pki::new();
    for mode in [Mode::Explicit, Mode::Implicit] {
        let server = FtpsServer::start(&pki, mode);
        let tree = site_tree(5);
        for extra in [&["--insecure"][..], &["--insecure", "-q"]] {
            let run = sync(tree.path(), &server.url("site"), extra);
            assert_eq!(run.code, 0, "{mode:?} {extra:?}: {run}");
            assert!(run.stderr.contains(INSECURE_WARNING), "{run}");
        }
        assert_mirror(tree.path(), &server.remote_dir("site"));
    }
}

#[test]
fn a_tls_version_the_server_lacks_fails_with_exit_2_and_says_what_to_try() {
    let pki = Pki::new();
    let flags = TlsFlags::V1_3 | TlsFlags::RESUMPTION_TICKETS;
    let server = FtpsServer::start_with(&pki, Mode::Explicit, flags, "server");
    let tree = site_tree(5);
    let ca = pki.path("ca.pem");
    let run = sync(
        tree.path(),
        &server.url("site"),
        &["--ca-file", &ca, "--tls-version", "1.2"],
    );
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("--tls-version"), "{run}");
    assert!(run.stderr.contains("127.0.0.1"), "{run}");
    for extra in [&[][..], &["--tls-version", "1.3"]] {
        let args = [&["--ca-file", ca.as_str(), "-j", "8"][..], extra].concat();
        let run = sync(tree.path(), &server.url("site"), &args);
        assert_eq!(run.code, 0, "{extra:?}: {run}");
        assert_mirror(tree.path(), &server.remote_dir("site"));
    }
}

#[test]
fn a_server_without_tls_is_refused_with_exit_2_before_the_password_is_sent() {
    let server = FtpServer::start();
    let recorder = Recorder::start(server.port);
    let tree = site_tree(3);
    let url = format!(
        "ftpes://test:pw-canary-7f3a@127.0.0.1:{}/site",
        recorder.port()
    );
    let run = sync(tree.path(), &url, &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("refused AUTH TLS"), "{run}");
    let sent = recorder.sent();
    assert!(
        contains(&sent, "AUTH TLS\r\n"),
        "{}",
        String::from_utf8_lossy(&sent)
    );
    assert!(!contains(&sent, "pw-canary-7f3a"), "the password went out");
    assert!(
        !contains(&sent, "USER"),
        "nothing after the refused AUTH TLS"
    );
    assert!(!server.remote_dir("site").exists());
}

#[test]
fn the_password_never_crosses_the_wire_in_clear_text_on_ftpes() {
    const PASSWORD: &str = "pw-canary-7f3a";
    let pki = Pki::new();
    let server = FtpsServer::start(&pki, Mode::Explicit);
    let recorder = Recorder::start(server.port());
    let tree = site_tree(10);
    let url = format!("ftpes://test:{PASSWORD}@127.0.0.1:{}/site", recorder.port());
    let ca = pki.path("ca.pem");
    let run = sync(tree.path(), &url, &["-j", "4", "--ca-file", &ca]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir("site"));
    let sent = recorder.sent();
    assert!(sent.starts_with(b"AUTH TLS\r\n"), "AUTH TLS comes first");
    // Four connections, each with nothing readable after its AUTH TLS.
    let clear = String::from_utf8_lossy(&sent)
        .matches("AUTH TLS\r\n")
        .count();
    assert_eq!(clear, 4, "one AUTH TLS per connection");
    for needle in [PASSWORD, "PASS", "USER"] {
        assert!(
            !contains(&sent, needle),
            "{needle:?} crossed the wire in clear text"
        );
    }

    // Control: the same capture over plain FTP does see the password, so the check above would
    // have caught it.
    let plain = FtpServer::start();
    let recorder = Recorder::start(plain.port);
    let url = format!("ftp://test:{PASSWORD}@127.0.0.1:{}/site", recorder.port());
    assert_eq!(sync(tree.path(), &url, &[]).code, 0);
    assert!(contains(&recorder.sent(), &format!("PASS {PASSWORD}\r\n")));
}

// ---------------------------------------------------------------------------------------------
// Real servers
// ---------------------------------------------------------------------------------------------

/// The TLS instances of `name` (`VSFTPD` or `PROFTPD`) from `FTPSYNC_TEST_<name>_TLS_*`, with
/// the CA that signed their certificate; None (with a notice) when not configured, a panic when
/// `FTPSYNC_REQUIRE_REAL_SERVERS=1`.
fn real_tls_server(name: &'static str) -> Option<(Vec<(Mode, RealServer)>, String)> {
    let var = |suffix: &str| {
        let key = format!("FTPSYNC_TEST_{suffix}");
        std::env::var(&key)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(key)
    };
    let found = (|| {
        let root = PathBuf::from(var(&format!("{name}_TLS_ROOT"))?);
        let mut servers = Vec::new();
        for (mode, suffix) in [
            (Mode::Explicit, "TLS_URL"),
            (Mode::Implicit, "TLS_IMPLICIT_URL"),
        ] {
            let url = var(&format!("{name}_{suffix}"))?;
            let url = if url.ends_with('/') {
                url
            } else {
                format!("{url}/")
            };
            let root = root.clone();
            servers.push((mode, RealServer { name, url, root }));
        }
        Ok::<_, String>((servers, var("TLS_CA")?))
    })();
    match found {
        Ok(found) => Some(found),
        Err(missing) if std::env::var("FTPSYNC_REQUIRE_REAL_SERVERS").is_ok_and(|v| v == "1") => {
            panic!("FTPSYNC_REQUIRE_REAL_SERVERS=1 but {missing} is not set (scripts/test-servers.sh start)")
        }
        Err(missing) => {
            eprintln!("notice: {name} FTPS tests skipped: {missing} is not set");
            None
        }
    }
}

/// With 8 workers: a first sync of a few hundred files, a rerun that uploads nothing, and a
/// sync with deletes, each checked byte for byte on the server's disk.
fn first_sync_rerun_and_deletes(server: &RealServer, label: &str, args: &[&str]) {
    let (url, dir) = server.scratch(&format!("ftps_{label}"));
    let tree = site_tree(300);
    let args = [&["-j", "8"][..], args].concat();
    let run = sync(tree.path(), &url, &args);
    assert_eq!(run.code, 0, "{label}: {run}");
    assert_eq!(run.summary["files_uploaded"], 302, "{label}: {run}");
    assert_mirror(tree.path(), &dir);

    let before = snapshot(&dir);
    let rerun = sync(tree.path(), &url, &args);
    assert_eq!(rerun.code, 0, "{label}: {rerun}");
    assert_eq!(rerun.summary["files_uploaded"], 0, "{label}: {rerun}");
    assert_eq!(
        changed_files(&before, &snapshot(&dir)),
        Vec::<String>::new(),
        "{label}"
    );

    tree.remove("dir3");
    tree.remove("big/large.bin");
    tree.write("dir4/new.bin", b"new");
    let with_delete = [&args[..], &["--delete"]].concat();
    let run = sync(tree.path(), &url, &with_delete);
    assert_eq!(run.code, 0, "{label}: {run}");
    assert_eq!(run.summary["files_uploaded"], 1, "{label}: {run}");
    assert_eq!(
        run.summary["deleted"], 32,
        "{label}: dir3, its 30 files, large.bin: {run}"
    );
    assert_mirror(tree.path(), &dir);
}

/// Each mode (explicit, implicit) with each TLS version: negotiated, pinned to 1.2, to 1.3.
fn every_mode_and_version(name: &'static str) {
    let Some((servers, ca)) = real_tls_server(name) else {
        return;
    };
    for (mode, server) in &servers {
        for version in [None, Some("1.2"), Some("1.3")] {
            let label = format!(
                "{mode:?}_{}",
                version.map_or("negotiated".into(), |v| format!("tls{v}"))
            )
            .to_lowercase();
            let mut args = vec!["--ca-file", ca.as_str()];
            if let Some(version) = version {
                args.extend(["--tls-version", version]);
            }
            first_sync_rerun_and_deletes(server, &format!("{name}_{label}"), &args);
        }
    }
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_vsftpd_with_required_session_reuse_in_every_mode_and_tls_version() {
    every_mode_and_version("VSFTPD");
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_proftpd_with_required_session_reuse_in_every_mode_and_tls_version() {
    every_mode_and_version("PROFTPD");
}
