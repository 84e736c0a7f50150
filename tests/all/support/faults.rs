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

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// A fault for [`FaultProxy::start`]. `command` matches the start of a command line, ignoring
/// case (`"STOR"`, `"MKD"`, `"SITE UTIME"`); `path` must occur in the rest of the line (`""`
/// matches any). `times` is how many times the fault fires before it stops (`usize::MAX`:
/// always); firings are counted across all connections ([`FaultProxy::fired`]). Where several
/// faults match a command, the first one in the list with firings left applies.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Cuts an upload (STOR/APPE of a path containing `path`) once the client sends more than
    /// `after_bytes` bytes: the first `after_bytes` reach the server, then the data connection
    /// is reset (RST) on both sides and the client's control connection is reset too. Fires for
    /// the first `times` uploads that get that far; shorter uploads are not touched and do not
    /// count. The server is left with at most `after_bytes` bytes (or whatever it does with a
    /// broken upload).
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
}

impl Fault {
    fn times(&self) -> usize {
        match self {
            Fault::DropUploadAfter { times, .. }
            | Fault::ResetOn { times, .. }
            | Fault::StallOn { times, .. }
            | Fault::Reply { times, .. } => *times,
            Fault::MaxConnections { .. } | Fault::AnswerDuringTransfer => usize::MAX,
            Fault::HoldTransferEnd { times, .. }
            | Fault::ServeListing { times, .. }
            | Fault::CutListing { times, .. } => *times,
        }
    }

    /// What this fault does to the command `line`, if it targets it (DropUploadAfter and
    /// MaxConnections act elsewhere).
    fn action(&self, line: &str) -> Option<Action> {
        let (command, path, action) = match self {
            Fault::ResetOn { command, path, .. } => (command, path, Action::Reset),
            Fault::StallOn { command, path, .. } => (command, path, Action::Stall),
            Fault::Reply {
                command,
                path,
                reply,
                ..
            } => (command, path, Action::Reply(reply.clone())),
            Fault::ServeListing {
                command,
                path,
                listing,
                ..
            } => (command, path, Action::Serve(*listing)),
            Fault::CutListing {
                command,
                path,
                after_lines,
                ..
            } => (command, path, Action::Forward(Plan::CutAfter(*after_lines))),
            _ => return None,
        };
        let listing_only = matches!(action, Action::Serve(_) | Action::Forward(_));
        let fits = !listing_only || is_listing(line);
        (fits && matches(line, command, path)).then_some(action)
    }
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

/// State shared by the test thread and every session of one proxy.
struct Shared {
    faults: Vec<Fault>,
    /// Firings so far, by index in `faults`.
    fired: Mutex<Vec<usize>>,
    commands: Mutex<Vec<String>>,
    followed: Mutex<Vec<String>>,
    /// Client control connections open now, and the most at once.
    open: AtomicUsize,
    peak: AtomicUsize,
    /// Refuse every new connection, as a server being restarted does.
    down: std::sync::atomic::AtomicBool,
    /// Replies held back so far ([`Fault::HoldTransferEnd`]), and their release.
    held: (Mutex<usize>, std::sync::Condvar),
    release: tokio::sync::Notify,
}

/// What to do with one command line from a client.
enum Action {
    /// Forward it; for a transfer, with what its data connection does.
    Forward(Plan),
    Reset,
    Stall,
    Reply(String),
    /// Answer a listing command with a listing of the proxy's own.
    Serve(Listing),
}

/// What a data connection does, told once its command is known.
enum Plan {
    /// Relays it; for an upload, with the [`Fault::DropUploadAfter`] that may cut it.
    Relay(Option<Cut>),
    /// Relays a listing and resets the client's side after that many lines.
    CutAfter(usize),
    /// Sends the proxy's own listing; `mlsd`: in MLSD format.
    Serve { listing: Listing, mlsd: bool },
}

/// A [`Fault::DropUploadAfter`] armed on one upload.
#[derive(Clone, Copy, Debug)]
struct Cut {
    fault: usize,
    after_bytes: u64,
}

impl Shared {
    /// Takes one firing of fault `index`; false if it has none left.
    fn claim(&self, index: usize) -> bool {
        let mut fired = self.fired.lock().unwrap();
        let left = fired[index] < self.faults[index].times();
        if left {
            fired[index] += 1;
        }
        left
    }

    /// Records the command `line` and decides what to do with it.
    fn on_command(&self, line: &str) -> Action {
        self.commands.lock().unwrap().push(line.to_string());
        for (index, fault) in self.faults.iter().enumerate() {
            match fault.action(line) {
                Some(action) if self.claim(index) => return action,
                _ => {}
            }
        }
        // An upload is only armed here: the firing is claimed when the cut happens (see
        // `relay_upload`), so an upload too short to be cut does not use one up.
        let upload = matches(line, "STOR", "") || matches(line, "APPE", "");
        let fired = self.fired.lock().unwrap();
        let cut = self
            .faults
            .iter()
            .enumerate()
            .find_map(|(fault, f)| match f {
                Fault::DropUploadAfter {
                    path,
                    after_bytes,
                    times,
                } if upload && argument(line).contains(path.as_str()) && fired[fault] < *times => {
                    let after_bytes = *after_bytes;
                    Some(Cut { fault, after_bytes })
                }
                _ => None,
            });
        Action::Forward(Plan::Relay(cut))
    }

    /// The [`Fault::HoldTransferEnd`] that holds the end of the transfer `command`, if any
    /// (claiming a firing).
    fn holds_end_of(&self, command: &str) -> bool {
        self.faults.iter().enumerate().any(|(index, fault)| {
            matches!(fault, Fault::HoldTransferEnd { path, .. } if argument(command).contains(path.as_str()))
                && self.claim(index)
        })
    }

    /// The [`Fault::AnswerDuringTransfer`] fault, if there is one.
    fn answers_during_transfer(&self) -> Option<usize> {
        self.faults
            .iter()
            .position(|fault| matches!(fault, Fault::AnswerDuringTransfer))
    }

    /// The [`Fault::MaxConnections`] that refuses a new connection while `open` are open.
    fn refusal(&self, open: usize) -> Option<usize> {
        self.faults
            .iter()
            .position(|fault| matches!(fault, Fault::MaxConnections { max } if open >= *max))
    }
}

/// Whether the command `line` starts with `command` (ignoring case) and its argument contains
/// `path`.
fn matches(line: &str, command: &str, path: &str) -> bool {
    let starts = line
        .as_bytes()
        .get(..command.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(command.as_bytes()));
    starts && argument(line).contains(path)
}

/// What follows the command verb on a command line.
fn argument(line: &str) -> &str {
    line.split_once(' ').map_or("", |(_, argument)| argument)
}

/// Whether the command `line` lists a folder over a data connection.
fn is_listing(line: &str) -> bool {
    let verb = line.split(' ').next().unwrap_or_default();
    ["LIST", "NLST", "MLSD"]
        .iter()
        .any(|listing| verb.eq_ignore_ascii_case(listing))
}

/// Whether the command `line` transfers data over the connection opened after PASV/EPSV.
fn is_transfer(line: &str) -> bool {
    let verb = line.split(' ').next().unwrap_or_default();
    ["STOR", "APPE", "STOU", "RETR", "LIST", "NLST", "MLSD"]
        .iter()
        .any(|transfer| verb.eq_ignore_ascii_case(transfer))
}

/// A client control connection, counted in [`Shared::open`] for as long as this lives.
struct OpenConnection(Arc<Shared>);

impl OpenConnection {
    fn new(shared: &Arc<Shared>) -> OpenConnection {
        let now = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak.fetch_max(now, Ordering::SeqCst);
        OpenConnection(shared.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, shared: Arc<Shared>) {
    loop {
        let Ok((mut client, _peer)) = listener.accept().await else {
            continue;
        };
        // Only this loop adds connections, so `open` cannot grow between check and count.
        if shared.down.load(Ordering::SeqCst) {
            // A server being restarted: the port answers, the service does not.
            let _ = client
                .write_all(b"421 Service not available, closing control connection\r\n")
                .await;
            let _ = client.shutdown().await;
            continue;
        }
        if let Some(index) = shared.refusal(shared.open.load(Ordering::SeqCst)) {
            shared.claim(index);
            // A fresh socket's send buffer takes these few bytes at once.
            let _ = client.write_all(b"421 Too many connections\r\n").await;
            let _ = client.shutdown().await;
            continue;
        }
        let open = OpenConnection::new(&shared);
        tokio::spawn(serve_client(client, upstream.clone(), open));
    }
}

/// Connects a newly accepted client to the server and relays the session.
async fn serve_client(mut client: TcpStream, upstream: String, open: OpenConnection) {
    let server = match TcpStream::connect(&upstream).await {
        Ok(server) => server,
        Err(err) => {
            let reply = format!("421 Fault proxy cannot reach {upstream}: {err}\r\n");
            let _ = client.write_all(reply.as_bytes()).await;
            return;
        }
    };
    let server_ip = server
        .peer_addr()
        .map_or(IpAddr::from([127, 0, 0, 1]), |addr| addr.ip());
    let session = Session {
        shared: open.0.clone(),
        open: Some(open),
        client: BufReader::new(client),
        server: BufReader::new(server),
        server_ip,
        replies: Replies::default(),
        transfers: JoinSet::new(),
        pending: None,
        auth_sent: false,
        // The greeting comes first.
        awaiting: true,
        in_transfer: false,
        transfer_command: None,
    };
    session.run().await;
}

/// How a session goes on after one event.
enum Flow {
    Continue,
    /// Close both control connections normally.
    End,
    /// Reset the client's control connection.
    Reset,
    /// Relay nothing more; wait for the client to close.
    Stall,
    /// Relay bytes blindly from now on (TLS was negotiated).
    Splice,
}

/// One client control connection and its connection to the server.
struct Session {
    shared: Arc<Shared>,
    /// Counts this connection open until it ends or the client said QUIT.
    open: Option<OpenConnection>,
    client: BufReader<TcpStream>,
    server: BufReader<TcpStream>,
    /// Where the server's passive ports are (its `227` reply may name another address).
    server_ip: IpAddr,
    replies: Replies,
    /// Data connections of this session; dropping the set (the session ends) closes them.
    transfers: JoinSet<Outcome>,
    /// Tells the data connection of the last PASV/EPSV which command it is for; dropping it
    /// (another PASV, or a transfer answered by the proxy) closes that data connection.
    pending: Option<oneshot::Sender<Plan>>,
    /// An `AUTH` was forwarded and not answered yet.
    auth_sent: bool,
    /// A forwarded command has no final reply yet. The next command is read only then, so a
    /// client that pipelines still gets the proxy's own replies in command order.
    awaiting: bool,
    /// A transfer is in progress (its 150 came, its final reply not yet).
    in_transfer: bool,
    /// The last transfer command forwarded.
    transfer_command: Option<String>,
}

impl Session {
    async fn run(mut self) {
        // Kept across loop turns: `read_until` is cancel-safe only if its buffer survives.
        let (mut command, mut reply) = (Vec::new(), Vec::new());
        let flow = loop {
            let flow = tokio::select! {
                // A cut upload first: the client must not get another reply on this connection.
                biased;
                Some(ended) = self.transfers.join_next() => match ended {
                    Ok(Outcome::Cut) => Flow::Reset,
                    Ok(Outcome::Served(reply)) => self.end_served(reply).await,
                    _ => Flow::Continue,
                },
                read = self.client.read_until(b'\n', &mut command), if self.reads_commands() => match read {
                    Ok(n) if n > 0 && command.ends_with(b"\n") => {
                        if !self.client.buffer().is_empty() {
                            // The client sent the next command without waiting for this reply.
                            let line = String::from_utf8_lossy(&command);
                            let line = line.trim_end_matches(['\r', '\n']).to_string();
                            self.shared.followed.lock().unwrap().push(line);
                        }
                        self.on_command(std::mem::take(&mut command)).await
                    }
                    _ => Flow::End,
                },
                read = self.server.read_until(b'\n', &mut reply) => match read {
                    Ok(n) if n > 0 && reply.ends_with(b"\n") => {
                        self.on_reply(std::mem::take(&mut reply)).await
                    }
                    _ => Flow::End,
                },
            };
            if !matches!(flow, Flow::Continue) {
                break flow;
            }
        };
        match flow {
            Flow::Reset => reset_on_close(self.client.get_ref()),
            Flow::Stall => {
                let mut sink = [0; 4096];
                while matches!(self.client.read(&mut sink).await, Ok(n) if n > 0) {}
            }
            Flow::Splice => {
                // The BufReaders pass on whatever they had buffered already.
                let _ = tokio::io::copy_bidirectional(&mut self.client, &mut self.server).await;
            }
            _ => {}
        }
    }

    /// Whether the next command is read now.
    fn reads_commands(&self) -> bool {
        !self.awaiting || (self.in_transfer && self.shared.answers_during_transfer().is_some())
    }

    async fn on_command(&mut self, line: Vec<u8>) -> Flow {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if self.awaiting {
            // Read during a transfer (Fault::AnswerDuringTransfer).
            let index = self
                .shared
                .answers_during_transfer()
                .expect("only read with the fault");
            self.shared.commands.lock().unwrap().push(text.to_string());
            self.shared.claim(index);
            let written = self
                .client
                .get_mut()
                .write_all(b"500 Unknown command\r\n")
                .await;
            return written.map_or(Flow::End, |()| Flow::Continue);
        }
        match self.shared.on_command(text) {
            Action::Reset => Flow::Reset,
            Action::Stall => Flow::Stall,
            Action::Reply(reply) => {
                if is_transfer(text) {
                    self.pending = None;
                }
                let reply = format!("{}\r\n", reply.trim_end());
                let written = self.client.get_mut().write_all(reply.as_bytes()).await;
                written.map_or(Flow::End, |()| Flow::Continue)
            }
            Action::Serve(listing) => {
                let Some(pending) = self.pending.take() else {
                    let written = self
                        .client
                        .get_mut()
                        .write_all(b"425 Use PASV first\r\n")
                        .await;
                    return written.map_or(Flow::End, |()| Flow::Continue);
                };
                let mlsd = matches(text, "MLSD", "");
                let _ = pending.send(Plan::Serve { listing, mlsd });
                // No command is read until the listing's final reply went out.
                self.awaiting = true;
                let opened = b"150 Here comes the listing (fault proxy)\r\n";
                let written = self.client.get_mut().write_all(opened).await;
                written.map_or(Flow::End, |()| Flow::Continue)
            }
            Action::Forward(plan) => {
                if is_transfer(text) {
                    if let Some(pending) = self.pending.take() {
                        let _ = pending.send(plan);
                    }
                    self.transfer_command = Some(text.to_string());
                }
                self.auth_sent |= matches(text, "AUTH ", "");
                self.awaiting = true;
                let written = self.server.get_mut().write_all(&line).await;
                if matches(text, "QUIT", "") {
                    // The session is over once QUIT went on: a client need not wait for the
                    // 221, and counting the connection open until the server's reply came
                    // back would make one client's sessions seem to overlap the next ones.
                    self.open = None;
                }
                written.map_or(Flow::End, |()| Flow::Continue)
            }
        }
    }

    async fn on_reply(&mut self, mut line: Vec<u8>) -> Flow {
        let code = self.replies.end(&line);
        // 1xx replies are preliminary: the command's final reply is still to come.
        if code.is_some_and(|c| c >= 200) {
            self.awaiting = false;
        }
        if let Some(code) = code {
            self.in_transfer = matches!(code, 125 | 150);
        }
        if code.is_some_and(|c| c >= 200) {
            let ended = self.transfer_command.take();
            if ended.is_some_and(|command| self.shared.holds_end_of(&command)) {
                {
                    let (count, changed) = &self.shared.held;
                    *count.lock().unwrap() += 1;
                    changed.notify_all();
                }
                self.shared.release.notified().await;
            }
        }
        let passive = match code {
            Some(227) => pasv_port(&line),
            Some(229) => epsv_port(&line),
            _ => None,
        };
        if let Some(server_port) = passive {
            if let Some(port) = self.intercept(server_port).await {
                line = if code == Some(227) {
                    let [p1, p2] = port.to_be_bytes();
                    format!("227 Entering Passive Mode (127,0,0,1,{p1},{p2}).\r\n")
                } else {
                    format!("229 Entering Extended Passive Mode (|||{port}|)\r\n")
                }
                .into_bytes();
            }
        }
        let written = self.client.get_mut().write_all(&line).await;
        // The first reply to end after an AUTH answers it; 234 means TLS starts right after.
        let answers_auth = code.is_some() && std::mem::take(&mut self.auth_sent);
        match written {
            Ok(()) if answers_auth && code == Some(234) => Flow::Splice,
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End,
        }
    }

    /// Sends the final reply of a listing the proxy served itself.
    async fn end_served(&mut self, reply: &'static str) -> Flow {
        self.awaiting = false;
        let written = self.client.get_mut().write_all(reply.as_bytes()).await;
        written.map_or(Flow::End, |()| Flow::Continue)
    }

    /// Opens the proxy's own passive port in front of the server's `server_port`; returns it.
    async fn intercept(&mut self, server_port: u16) -> Option<u16> {
        let listener = TcpListener::bind("127.0.0.1:0").await.ok()?;
        let port = listener.local_addr().ok()?.port();
        let (plan_tx, plan_rx) = oneshot::channel();
        self.pending = Some(plan_tx);
        let server = SocketAddr::new(self.server_ip, server_port);
        let shared = self.shared.clone();
        self.transfers
            .spawn(transfer(shared, listener, server, plan_rx));
        Some(port)
    }
}

/// Makes closing `stream` send a reset (RST) instead of an orderly FIN.
fn reset_on_close(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Finds where replies end in the server's reply lines (RFC 959 §4.2): a reply is a line
/// `ddd text`, or the lines from `ddd-text` to the next that starts with `ddd ` (lines in
/// between may look like anything, even like other replies).
#[derive(Default)]
struct Replies {
    open: Option<[u8; 3]>,
}

impl Replies {
    /// The code of the reply that `line` ends, or `None` if it does not end one.
    fn end(&mut self, line: &[u8]) -> Option<u16> {
        let code: [u8; 3] = line.get(..3)?.try_into().ok()?;
        if !code.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let separator = line.get(3).copied();
        match self.open {
            Some(open) if open != code || separator != Some(b' ') => return None,
            Some(_) => self.open = None,
            None if separator == Some(b'-') => {
                self.open = Some(code);
                return None;
            }
            None => {}
        }
        std::str::from_utf8(&code).ok()?.parse().ok()
    }
}

/// The port of a `227` reply: the last two of the numbers `h1,h2,h3,h4,p1,p2` (servers differ
/// on the text around them, parentheses included).
fn pasv_port(line: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(line.get(4..)?).ok()?;
    text.split(|c: char| !(c.is_ascii_digit() || c == ','))
        .find_map(|field| {
            let numbers: Vec<u8> = field
                .split(',')
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            (numbers.len() == 6).then(|| u16::from_be_bytes([numbers[4], numbers[5]]))
        })
}

/// The port of a `229` reply: `(|||port|)`, where `|` may be any delimiter (RFC 2428).
fn epsv_port(line: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(line).ok()?;
    let inner = text.get(text.find('(')? + 1..text.rfind(')')?)?;
    let delimiter = inner.chars().next()?;
    inner.split(delimiter).nth(3)?.parse().ok()
}

/// How a data connection ended.
enum Outcome {
    Done,
    /// A [`Fault::DropUploadAfter`] cut it: the session must reset its control connection too.
    Cut,
    /// The proxy's own listing ended; the session sends this final reply.
    Served(&'static str),
}

/// Serves one passive data connection: waits for the client to connect to `listener` and for
/// the session to say which command it is for (`plan`), then relays it to `server`.
async fn transfer(
    shared: Arc<Shared>,
    listener: TcpListener,
    server: SocketAddr,
    plan: oneshot::Receiver<Plan>,
) -> Outcome {
    // Clients usually connect as soon as they have the 227 reply, before they send the command,
    // but need not. A connection that never comes waits for the session to end (and drop it).
    let (plan, accepted) = tokio::join!(plan, listener.accept());
    // No plan: no transfer after all (answered by the proxy, or another PASV came first).
    let (Ok(plan), Ok((mut client, _peer))) = (plan, accepted) else {
        return Outcome::Done;
    };
    drop(listener);
    if let Plan::Serve { listing, mlsd } = plan {
        return serve_listing(client, listing, mlsd).await;
    }
    let Ok(mut server) = TcpStream::connect(server).await else {
        return Outcome::Done;
    };
    match plan {
        Plan::Relay(Some(cut)) => relay_upload(&shared, client, server, cut).await,
        Plan::CutAfter(lines) => relay_lines(client, server, lines).await,
        _ => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            Outcome::Done
        }
    }
}

/// One valid listing line: file `name` (1 byte), or a folder.
fn entry_line(name: &str, dir: bool, mlsd: bool) -> String {
    match (mlsd, dir) {
        (true, false) => format!("type=file;size=1;modify=20240102030405; {name}\r\n"),
        (true, true) => format!("type=dir;modify=20240102030405; {name}\r\n"),
        (false, false) => format!("-rw-r--r--   1 ftp  ftp         1 Jan 02  2024 {name}\r\n"),
        (false, true) => format!("drwxr-xr-x   2 ftp  ftp      4096 Jan 02  2024 {name}\r\n"),
    }
}

/// Sends [`Fault::ServeListing`]'s listing to `client`, until it ends or the client hangs up.
async fn serve_listing(mut client: TcpStream, listing: Listing, mlsd: bool) -> Outcome {
    const HUNG_UP: &str = "426 Connection closed; transfer aborted\r\n";
    let mut n = 0u64;
    let mut next_file = move || {
        n += 1;
        entry_line(&format!("f{n:09}"), false, mlsd)
    };
    match listing {
        Listing::Nested => {
            let both = entry_line("d", true, mlsd) + &entry_line("f", false, mlsd);
            if client.write_all(both.as_bytes()).await.is_err() {
                return Outcome::Served(HUNG_UP);
            }
            let _ = client.shutdown().await;
            Outcome::Served("226 Transfer complete\r\n")
        }
        Listing::Endless => loop {
            let batch: String = (0..1000).map(|_| next_file()).collect();
            if client.write_all(batch.as_bytes()).await.is_err() {
                return Outcome::Served(HUNG_UP);
            }
        },
        Listing::Trickle { every } => loop {
            if client.write_all(next_file().as_bytes()).await.is_err() {
                return Outcome::Served(HUNG_UP);
            }
            tokio::time::sleep(every).await;
        },
    }
}

/// Relays a listing from `server` to `client` until `lines` lines went through, then resets
/// the client's side ([`Fault::CutListing`]).
async fn relay_lines(mut client: TcpStream, mut server: TcpStream, lines: usize) -> Outcome {
    let mut buf = vec![0; 64 * 1024];
    let mut left = lines;
    while left > 0 {
        let n = match server.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let mut ends = chunk.iter().enumerate().filter(|(_, &b)| b == b'\n');
        match ends.nth(left - 1) {
            Some((at, _)) => {
                let _ = client.write_all(&chunk[..=at]).await;
                left = 0;
            }
            None => {
                left -= chunk.iter().filter(|&&b| b == b'\n').count();
                if client.write_all(chunk).await.is_err() {
                    return Outcome::Done;
                }
            }
        }
    }
    if left == 0 {
        reset_on_close(&client);
        return Outcome::Done;
    }
    // Shorter than `lines`: relayed whole.
    let _ = client.shutdown().await;
    Outcome::Done
}

/// Relays an upload, and cuts it if the client sends more than `cut.after_bytes` bytes while
/// the fault has firings left: the bytes up to that point are forwarded, then both sides reset.
async fn relay_upload(
    shared: &Shared,
    mut client: TcpStream,
    mut server: TcpStream,
    cut: Cut,
) -> Outcome {
    let mut buf = vec![0; 64 * 1024];
    let mut relayed = 0u64;
    let mut armed = true;
    loop {
        let n = match client.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => {
                // The client broke the upload: don't let the server take it as complete.
                reset_on_close(&server);
                return Outcome::Done;
            }
        };
        let room = cut.after_bytes.saturating_sub(relayed);
        if armed && n as u64 > room {
            if shared.claim(cut.fault) {
                // `room < n`, so it fits in usize.
                let _ = server.write_all(&buf[..room as usize]).await;
                reset_on_close(&client);
                reset_on_close(&server);
                return Outcome::Cut;
            }
            // Other uploads used up the fault's firings meanwhile.
            armed = false;
        }
        if server.write_all(&buf[..n]).await.is_err() {
            return Outcome::Done;
        }
        relayed += n as u64;
    }
    // The client finished: pass the end on, and the server's close back, as a relay would.
    let _ = server.shutdown().await;
    let _ = tokio::io::copy(&mut server, &mut client).await;
    Outcome::Done
}
