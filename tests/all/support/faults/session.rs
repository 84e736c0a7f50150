//! The control connections: accepting clients (or refusing them, for a server that is down or
//! full), and a [`Session`] per client that relays commands and replies a line at a time,
//! applies the faults its commands meet, and puts the proxy in front of each passive data port.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::data::{transfer, Outcome};
use super::shared::{is_transfer, matches, Action, Plan, Shared};
use super::Fault;

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

pub(super) async fn accept_loop(listener: TcpListener, upstream: String, shared: Arc<Shared>) {
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
        connected: None,
        auth_sent: false,
        // The greeting comes first.
        awaiting: true,
        in_transfer: false,
        transfer_command: None,
        reset_at_reply: false,
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
    /// Tells when the client connected to the data port of the last PASV/EPSV.
    connected: Option<oneshot::Receiver<()>>,
    /// An `AUTH` was forwarded and not answered yet.
    auth_sent: bool,
    /// A forwarded command has no final reply yet. The next command is read only then, so a
    /// client that pipelines still gets the proxy's own replies in command order.
    awaiting: bool,
    /// A transfer is in progress (its 150 came, its final reply not yet).
    in_transfer: bool,
    /// The last transfer command forwarded.
    transfer_command: Option<String>,
    /// The forwarded command's final reply resets the connection ([`super::Fault::ResetAfter`]).
    reset_at_reply: bool,
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
            // Read during a transfer (Fault::AnswerDuringTransfer, SwallowDuringTransfer).
            let index = self
                .shared
                .answers_during_transfer()
                .expect("only read with the fault");
            if let Fault::SwallowDuringTransfer = self.shared.faults[index] {
                self.shared.commands.lock().unwrap().push(text.to_string());
                self.shared.claim(index);
                return Flow::Continue;
            }
            return self.refuse_unread(text, index).await;
        }
        let rewritten = self.shared.rewritten(text);
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
                    if let Flow::End = self.answer_probe_first().await {
                        return Flow::End;
                    }
                }
                self.auth_sent |= matches(text, "AUTH ", "");
                self.reset_at_reply = self.shared.resets_after(text);
                self.awaiting = true;
                let line = rewritten.as_deref().map_or(&line[..], str::as_bytes);
                let written = self.server.get_mut().write_all(line).await;
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

    /// Whether the client's next command is there already (read, or waiting in the socket).
    fn command_waiting(&self) -> bool {
        let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
        let mut byte = [0u8; 1];
        !self.client.buffer().is_empty()
            || rustix::net::recv(self.client.get_ref(), &mut byte[..], flags)
                .is_ok_and(|(n, _)| n > 0)
    }

    /// [`Fault::AnswerProbeFirst`]: a NOOP right behind the transfer command is answered now.
    async fn answer_probe_first(&mut self) -> Flow {
        const NOOP: &[u8] = b"NOOP\r\n";
        let Some(index) = self.shared.answers_probe_first() else {
            return Flow::Continue;
        };
        if !self.client.buffer().starts_with(NOOP) {
            return Flow::Continue;
        }
        std::pin::Pin::new(&mut self.client).consume(NOOP.len());
        self.shared.commands.lock().unwrap().push("NOOP".into());
        self.shared.claim(index);
        let written = self.client.get_mut().write_all(b"200 NOOP ok\r\n").await;
        written.map_or(Flow::End, |()| Flow::Continue)
    }

    /// [`Fault::AnswerBeforeTransfer`]: once the client's data connection came, every command
    /// it wrote behind the transfer command is answered now.
    async fn answer_before_transfer(&mut self) -> Flow {
        let Some(index) = self.shared.answers_before_transfer() else {
            return Flow::Continue;
        };
        if let Some(connected) = self.connected.take() {
            // Bounded, so that a client that never connects gets its 150 all the same.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), connected).await;
        }
        while self.command_waiting() {
            let mut line = Vec::new();
            match self.client.read_until(b'\n', &mut line).await {
                Ok(n) if n > 0 => {}
                _ => return Flow::End,
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if let Flow::End = self.refuse_unread(text, index).await {
                return Flow::End;
            }
        }
        Flow::Continue
    }

    /// Records the command `text`, which the fault `index` answers `500` without forwarding it.
    async fn refuse_unread(&mut self, text: &str, index: usize) -> Flow {
        self.shared.commands.lock().unwrap().push(text.to_string());
        self.shared.claim(index);
        let written = self
            .client
            .get_mut()
            .write_all(b"500 Unknown command\r\n")
            .await;
        written.map_or(Flow::End, |()| Flow::Continue)
    }

    async fn on_reply(&mut self, mut line: Vec<u8>) -> Flow {
        let code = self.replies.end(&line);
        // 1xx replies are preliminary: the command's final reply is still to come.
        if code.is_some_and(|c| c >= 200) {
            self.awaiting = false;
        }
        let opens = matches!(code, Some(125 | 150)) && self.transfer_command.is_some();
        if opens {
            if let Flow::End = self.answer_before_transfer().await {
                return Flow::End;
            }
        }
        if let Some(code) = code {
            self.in_transfer = matches!(code, 125 | 150);
            if self.in_transfer {
                self.shared.transfers.fetch_add(1, Ordering::SeqCst);
            }
        }
        if code.is_some_and(|c| c >= 200) && std::mem::take(&mut self.reset_at_reply) {
            return Flow::Reset;
        }
        if code.is_some_and(|c| c >= 200) {
            let ended = self.transfer_command.take();
            if ended.is_some() && self.command_waiting() {
                self.shared.waiting_at_end.fetch_add(1, Ordering::SeqCst);
            }
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
        let (connected_tx, connected_rx) = oneshot::channel();
        self.connected = Some(connected_rx);
        let server = SocketAddr::new(self.server_ip, server_port);
        let shared = self.shared.clone();
        let told = (plan_rx, connected_tx);
        self.transfers
            .spawn(transfer(shared, listener, server, told));
        Some(port)
    }
}

/// Makes closing `stream` send a reset (RST) instead of an orderly FIN.
pub(super) fn reset_on_close(stream: &TcpStream) {
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
