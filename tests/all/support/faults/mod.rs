//! A fault-injecting FTP proxy for tests: [`FaultProxy`] listens on `127.0.0.1`, relays every
//! client to a real FTP server (the in-process [`super::FtpServer`] or a vsftpd/pure-ftpd on
//! loopback) and injects the [`Fault`]s it was started with. Like `FtpServer`, it runs on its
//! own thread with its own tokio runtime, so it works from plain `#[test]` functions too, and it
//! stops (dropping every connection) when dropped.
//!
//! It understands just enough FTP to do that; everything else is relayed unchanged:
//!
//! * Control connections are relayed a line at a time. Each command is recorded
//!   ([`FaultProxy::commands`]) and checked against the faults before it is forwarded. Replies
//!   are parsed only to find where each ends (multi-line replies such as FEAT's included).
//! * Passive data connections go through the proxy too, so that they can be cut: the server's
//!   `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` and `229 Entering Extended Passive Mode
//!   (|||port|)` replies are rewritten to point at a listener of the proxy on `127.0.0.1`.
//!   The client's connection there is matched with the next transfer command (STOR, APPE, STOU,
//!   RETR, LIST, NLST, MLSD) on the same control connection, and only then relayed to the
//!   server's passive port (on the server's control address, whatever the reply said).
//!
//! * Listings can be answered by the proxy itself ([`Fault::ServeListing`]: endless,
//!   trickling, or an endlessly nested tree) or cut short with a reset ([`Fault::CutListing`]).
//!
//! Limits: active mode (PORT/EPRT) data connections go straight between client and server,
//! unseen; after a successful `AUTH TLS` the session is relayed blindly (encrypted), so later
//! commands are neither recorded nor faulted and data connections bypass the proxy.
//!
//! The parts: [`Fault`], [`Listing`] and [`FaultProxy`] here are what tests use; `shared.rs`
//! holds a proxy's state and decides which fault a command meets, `session.rs` relays control
//! connections and `data.rs` data connections.

mod data;
mod session;
mod shared;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use session::accept_loop;
use shared::Shared;

/// A fault for [`FaultProxy::start`]. `command` matches the start of a command line, ignoring
/// case (`"STOR"`, `"MKD"`, `"SITE UTIME"`); `path` must occur in the rest of the line (`""`
/// matches any). `times` is how many times the fault fires before it stops (`usize::MAX`:
/// always); firings are counted across all connections ([`FaultProxy::fired`]). Where several
/// faults match a command, the first one in the list with firings left applies.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Cuts an upload (STOR/APPE of a path containing `path`) once the client sends more than
    /// `after_bytes` bytes: the first `after_bytes` reach the server and its data connection is
    /// closed (its close awaited, at most 10 s), then the client's data connection is reset
    /// (RST) and its control connection too. Fires for the first `times` uploads that get that
    /// far; shorter uploads are not touched and do not count. The server is left with
    /// `after_bytes` bytes under the name it was given (an upload cut short, as far as it can
    /// tell), whatever its load.
    DropUploadAfter {
        path: String,
        after_bytes: u64,
        times: usize,
    },
    /// Resets (RST) the control connection when a matching command is sent, before forwarding
    /// it; data connections of that session are closed with it.
    ResetOn {
        command: String,
        path: String,
        times: usize,
    },
    /// Swallows a matching command: it is never forwarded nor answered, and nothing more is
    /// relayed on that connection, which stays open until the client closes it. The client
    /// waits forever unless it has a timeout.
    StallOn {
        command: String,
        path: String,
        times: usize,
    },
    /// Accepts at most `max` client control connections at a time: any more get
    /// `421 Too many connections` and are closed without contacting the server. Fires once per
    /// refused connection.
    MaxConnections { max: usize },
    /// Answers a matching command with `reply` (e.g. `"452 Insufficient storage space"`)
    /// instead of forwarding it. For a transfer command the data connection the client opened
    /// to the proxy is closed, and the server's passive port is never connected.
    Reply {
        command: String,
        path: String,
        reply: String,
        times: usize,
    },
    /// Reads the control connection while a transfer is in progress (after its 150, before its
    /// final reply) and answers every command found there with `500 Unknown command`, without
    /// forwarding it, as pure-ftpd does. Commands are otherwise passed on one at a time, each
    /// after the previous one's final reply, as most servers read them. Fires once per command
    /// answered this way.
    AnswerDuringTransfer,
    /// As [`Fault::AnswerDuringTransfer`], but only once this many transfers (150 replies)
    /// went through the proxy: a server that first seems to keep commands for after its
    /// transfers, then does not.
    AnswerDuringTransfersAfter(usize),
    /// As [`Fault::AnswerDuringTransfer`], but what is read during a transfer is dropped
    /// unanswered: a server (or a middlebox) that discards input while it transfers. Fires once
    /// per command dropped.
    SwallowDuringTransfer,
    /// Answers a `NOOP` the client wrote right behind a transfer command (in the same write)
    /// with `200` before the transfer's `150`, without forwarding it, as a server that runs
    /// commands side by side would. Fires once per NOOP answered this way.
    AnswerProbeFirst,
    /// Answers every command the client wrote behind a transfer command with `500 Unknown
    /// command` before the transfer's `150`, without forwarding it: a server that reads its
    /// control connection while the data connection opens. The `150` is relayed once the
    /// client's data connection came (the client writes what goes behind a transfer command
    /// before it connects). Fires once per command answered this way.
    AnswerBeforeTransfer,
    /// Holds back the final reply (226) of a transfer command whose path contains `path` until
    /// [`FaultProxy::release`] is called: the transfer is over on the server, the client does
    /// not know yet. [`FaultProxy::wait_held`] returns once a reply is held. Fires `times`.
    HoldTransferEnd { path: String, times: usize },
    /// Answers a matching listing command (`"MLSD"`, `"LIST"`, `""` for either) itself: `150`,
    /// then `listing` on the data connection the client opened to the proxy after its PASV, then
    /// `226` if the listing ends (`426` when the client hangs up first). The server never sees
    /// the command. Entry lines are MLSD facts for MLSD, `ls -l` lines otherwise, all valid.
    /// (Without a PASV first: `425`.) To make ftpsync list a LIST-only server over a data
    /// connection rather than with `STAT -a`, refuse STAT with a [`Fault::Reply`] too.
    ServeListing {
        command: String,
        path: String,
        listing: Listing,
        times: usize,
    },
    /// Relays a matching listing from the server, but resets (RST) the client's data connection
    /// after `after_lines` lines (the server's final reply then comes as the server sends it): a
    /// listing cut short, which a client must not take for the whole folder. Fires when the
    /// command is seen, even if the listing turns out shorter.
    CutListing {
        command: String,
        path: String,
        after_lines: usize,
        times: usize,
    },
    /// Forwards every command whose argument contains `from` with `to` in its place (the client
    /// never knows): with `Index.html` -> `index.html`, the server answers for that name as
    /// one that ignores case (IIS, FileZilla Server) does. Fires once per command rewritten.
    Rewrite { from: String, to: String },
    /// Forwards a matching command, then resets (RST) the control connection instead of
    /// relaying its final reply: the server did it, the client never hears so.
    ResetAfter {
        command: String,
        path: String,
        times: usize,
    },
}

/// What [`Fault::ServeListing`] sends.
#[derive(Clone, Copy, Debug)]
pub enum Listing {
    /// Files `f000000001`, `f000000002`, ... forever, as fast as the client reads them.
    Endless,
    /// The same, one line per `every`, forever.
    Trickle { every: Duration },
    /// A subfolder `d` and a file `f` (1 byte), in whatever folder is listed: an infinitely deep
    /// tree, the shape a symlink loop listed as a folder has too.
    Nested,
    /// Files (1 byte) with these names, as given: hostile names a server could send.
    Names(&'static [&'static str]),
}

/// A fault-injecting FTP proxy on `127.0.0.1:`[`FaultProxy::port`]; see the module docs.
pub struct FaultProxy {
    /// The port clients connect to, on 127.0.0.1.
    pub port: u16,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Proxies `127.0.0.1:`[`FaultProxy::port`] to `upstream` (e.g. `"127.0.0.1:2121"`),
    /// injecting `faults`.
    pub fn start(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
        // Bound here, so the port is known (and accepting) as soon as `start` returns.
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy's port");
        listener
            .set_nonblocking(true)
            .expect("make the fault proxy's listener non-blocking");
        let port = listener.local_addr().expect("fault proxy address").port();
        let shared = Arc::new(Shared {
            fired: Mutex::new(vec![0; faults.len()]),
            faults,
            commands: Mutex::default(),
            followed: Mutex::default(),
            open: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            down: Default::default(),
            held: Default::default(),
            release: Default::default(),
            transfers: AtomicUsize::new(0),
            waiting_at_end: AtomicUsize::new(0),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let upstream = upstream.to_string();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ftp-fault-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build the fault proxy's tokio runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("fault proxy listener");
                    tokio::select! {
                        () = accept_loop(listener, upstream, thread_shared) => {}
                        _ = stop_rx => {}
                    }
                });
                // Cancels every session and transfer, closing their sockets.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn the fault proxy thread");
        FaultProxy {
            port,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Waits until a reply is held back ([`Fault::HoldTransferEnd`]); false after `limit`.
    pub fn wait_held(&self, limit: Duration) -> bool {
        let (count, changed) = &self.shared.held;
        let guard = count.lock().unwrap();
        let (guard, _) = changed
            .wait_timeout_while(guard, limit, |held| *held == 0)
            .unwrap();
        *guard > 0
    }

    /// Lets a held reply go on to the client.
    pub fn release(&self) {
        self.shared.release.notify_one();
    }

    /// `upstream_url` (`ftp://user:pw@127.0.0.1:UP/path`) with the host and port replaced by the
    /// proxy's; the login and path are kept as they are.
    pub fn url(&self, upstream_url: &str) -> String {
        let (scheme, rest) = upstream_url
            .split_once("://")
            .unwrap_or_else(|| panic!("not a URL: {upstream_url:?}"));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let login = authority.rfind('@').map_or("", |at| &authority[..=at]);
        format!("{scheme}://{login}127.0.0.1:{}{path}", self.port)
    }

    /// How many times the fault at `index` (in the list given to [`FaultProxy::start`]) fired.
    pub fn fired(&self, index: usize) -> usize {
        self.shared.fired.lock().unwrap()[index]
    }

    /// Every command line clients sent so far, in order, without the line end, exactly as sent
    /// (`PASS` included), faulted ones included.
    pub fn commands(&self) -> Vec<String> {
        self.shared.commands.lock().unwrap().clone()
    }

    /// The command lines that already had the next command waiting behind them when the proxy
    /// read them: the client sent that one without waiting for the reply (pipelining).
    pub fn followed_commands(&self) -> Vec<String> {
        self.shared.followed.lock().unwrap().clone()
    }

    /// How many transfers had the client's next command already waiting when their final
    /// reply came: it was sent during the transfer (or before it began).
    pub fn commands_waiting_at_transfer_end(&self) -> usize {
        self.shared.waiting_at_end.load(Ordering::SeqCst)
    }

    /// The most client control connections that were open at the same time (refused ones not
    /// counted).
    pub fn peak_connections(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Takes the "server" down (every new connection refused with 421) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Client control connections open right now (the proxy notices a close at once, but a
    /// test should still poll for this to drop after its client disconnects).
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }
}

/// `index.html` (synced before) renamed `Index.html` in `tree`, with new text, and a proxy in
/// front of `upstream` that passes the new name on as the old one: what a server that ignores
/// case (IIS, FileZilla Server) makes of the rename.
pub fn renamed_in_case_only(upstream: &str, tree: &crate::support::Tree) -> FaultProxy {
    tree.remove("index.html");
    tree.write("Index.html", "new home, longer");
    let fold = Fault::Rewrite {
        from: "Index.html".into(),
        to: "index.html".into(),
    };
    FaultProxy::start(upstream, vec![fold])
}

impl Drop for FaultProxy {
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
