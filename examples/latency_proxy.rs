//! A latency emulator for benchmarking FTP over a slow link, in user space (these machines have no
//! `netem`): a TCP proxy that forwards a set of ports (an FTP server's control port and its whole
//! passive port range) and delays everything by a fixed ONE-WAY delay in each direction.
//!
//! ```text
//! cargo run --release --example latency_proxy -- \
//!     --listen 127.0.0.2 --target 127.0.0.1 --ports 2221,31000-31099 --delay-ms 10
//! ```
//!
//! Every port of `--ports` is listened on at `--listen` and forwarded to the same port of
//! `--target`. The FTP server must advertise the proxy's address in its PASV replies (vsftpd
//! `pasv_address`, pure-ftpd `-P`) so that data connections go through the proxy too.
//!
//! How the delay is applied:
//! - Each chunk read from one side is stamped with `now + delay` and queued; a writer task per
//!   connection direction writes it out at that time, in order. Chunks read close together leave
//!   close together, so the delay does not cap bandwidth (only the in-flight budget does:
//!   `--window-mib` per direction, i.e. bandwidth <= window / delay).
//! - End of stream (a half-close) is propagated as a shutdown of the write side, after the delay.
//!   A reset (read error) is propagated as a reset (zero linger) after the delay, and a failed
//!   write tears the whole connection down.
//! - The TCP handshake: the client's kernel completes its handshake with the proxy at once, so
//!   the proxy emulates the round trip it would have cost: it connects to the target 3 one-way
//!   delays after accepting (when the client's ACK would reach the server) and holds the client's
//!   first bytes until then. So every reply a client can observe arrives when it would on a real
//!   link; only `connect()` itself returns early. `--no-handshake-delay` turns this off (then the
//!   target is connected at once and a new connection costs no round trip).
//! - TCP_NODELAY is set on both sockets of every connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep_until, Instant};

/// Forward TCP ports with a fixed one-way delay per direction (FTP control + passive ports).
#[derive(Debug, Parser)]
#[command(name = "latency_proxy")]
struct Args {
    /// Address to listen on (e.g. 127.0.0.2)
    #[arg(long)]
    listen: IpAddr,
    /// Address to forward to, same port (e.g. 127.0.0.1)
    #[arg(long)]
    target: IpAddr,
    /// Ports to forward: a comma-separated list of ports and ranges (2221,31000-31099); repeatable
    #[arg(long, required = true)]
    ports: Vec<String>,
    /// One-way delay added in each direction, in milliseconds (round trip = 2x)
    #[arg(long, default_value_t = 10)]
    delay_ms: u64,
    /// Connect to the target at once instead of after the emulated handshake round trip
    #[arg(long)]
    no_handshake_delay: bool,
    /// Bytes in flight per connection direction, in MiB (bandwidth <= window / delay)
    #[arg(long, default_value_t = 32)]
    window_mib: u32,
    /// Log every connection to stderr
    #[arg(short, long)]
    verbose: bool,
}

/// Largest chunk read at once.
const CHUNK: usize = 256 * 1024;

fn parse_ports(specs: &[String]) -> Result<Vec<u16>> {
    let mut ports = Vec::new();
    for spec in specs {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((lo, hi)) = part.split_once('-') {
                let lo: u16 = lo
                    .trim()
                    .parse()
                    .with_context(|| format!("bad port {lo:?}"))?;
                let hi: u16 = hi
                    .trim()
                    .parse()
                    .with_context(|| format!("bad port {hi:?}"))?;
                if lo > hi || lo == 0 {
                    bail!("bad port range {part:?}");
                }
                ports.extend(lo..=hi);
            } else {
                let p: u16 = part.parse().with_context(|| format!("bad port {part:?}"))?;
                if p == 0 {
                    bail!("port 0 is not allowed");
                }
                ports.push(p);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        bail!("no ports given");
    }
    Ok(ports)
}

#[derive(Clone)]
struct Settings {
    target: IpAddr,
    delay: Duration,
    handshake: Duration,
    window: u32,
    verbose: bool,
}

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("latency_proxy: {err:#}");
        std::process::exit(2);
    }
}

async fn run() -> Result<()> {
    let args = Args::parse();
    let ports = parse_ports(&args.ports)?;
    let delay = Duration::from_millis(args.delay_ms);
    let settings = Settings {
        target: args.target,
        delay,
        handshake: if args.no_handshake_delay {
            Duration::ZERO
        } else {
            delay * 3
        },
        window: args.window_mib.clamp(1, 4095) * 1024 * 1024,
        verbose: args.verbose,
    };
    let mut listeners = Vec::with_capacity(ports.len());
    for &port in &ports {
        let addr = SocketAddr::new(args.listen, port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        listeners.push((port, listener));
    }
    eprintln!(
        "latency_proxy: {} port(s) {}..{} on {} -> {}, one-way delay {} ms (rtt {} ms){}",
        ports.len(),
        ports[0],
        ports[ports.len() - 1],
        args.listen,
        args.target,
        args.delay_ms,
        2 * args.delay_ms,
        if args.no_handshake_delay {
            ", no handshake delay"
        } else {
            ""
        }
    );
    for (port, listener) in listeners {
        let settings = settings.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((client, peer)) => {
                        let settings = settings.clone();
                        tokio::spawn(async move {
                            if settings.verbose {
                                eprintln!("latency_proxy: {peer} -> :{port}");
                            }
                            handle(client, port, settings).await;
                        });
                    }
                    Err(err) => {
                        // EMFILE and the like: back off instead of spinning.
                        eprintln!("latency_proxy: accept on :{port}: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

/// What travels through one direction's queue.
enum Msg {
    Data(Instant, Vec<u8>, OwnedSemaphorePermit),
    /// The source closed its write side: shut down ours at this time.
    Eof(Instant),
    /// The source reset (read error): reset ours at this time.
    Reset(Instant),
}

async fn handle(client: TcpStream, port: u16, s: Settings) {
    let accepted = Instant::now();
    let _ = client.set_nodelay(true);
    let (abort_tx, abort_rx) = watch::channel(false);
    let abort_tx = Arc::new(abort_tx);
    let (cr, cw) = client.into_split();

    // Client -> server: start reading now, deliver no earlier than the emulated handshake's end.
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let up_sem = Arc::new(Semaphore::new(s.window as usize));
    let up_floor = accepted + s.handshake;
    tokio::spawn(reader(
        cr,
        up_tx,
        up_sem.clone(),
        s.delay,
        up_floor,
        abort_rx.clone(),
    ));

    wait_until(up_floor).await;
    let server = match TcpStream::connect(SocketAddr::new(s.target, port)).await {
        Ok(server) => server,
        Err(err) => {
            if s.verbose {
                eprintln!("latency_proxy: connect to :{port}: {err}");
            }
            // As a refused connection would look from the client, a delay later: a reset.
            wait_until(Instant::now() + s.delay).await;
            let _ = cw.as_ref().set_zero_linger();
            cw.forget();
            let _ = abort_tx.send(true);
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let (sr, sw) = server.into_split();
    tokio::spawn(writer(
        sw,
        up_rx,
        up_sem,
        abort_tx.clone(),
        abort_rx.clone(),
    ));

    // Server -> client.
    let (down_tx, down_rx) = mpsc::unbounded_channel();
    let down_sem = Arc::new(Semaphore::new(s.window as usize));
    tokio::spawn(reader(
        sr,
        down_tx,
        down_sem.clone(),
        s.delay,
        Instant::now(),
        abort_rx.clone(),
    ));
    tokio::spawn(writer(cw, down_rx, down_sem, abort_tx, abort_rx));
}

/// Reads chunks from one side, stamps them with their due time and queues them.
async fn reader(
    mut rd: OwnedReadHalf,
    tx: mpsc::UnboundedSender<Msg>,
    sem: Arc<Semaphore>,
    delay: Duration,
    floor: Instant,
    mut abort: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let read = tokio::select! {
            r = rd.read(&mut buf) => r,
            _ = tx.closed() => return,
            _ = abort.wait_for(|a| *a) => return,
        };
        let due = (Instant::now() + delay).max(floor);
        match read {
            Ok(0) => {
                let _ = tx.send(Msg::Eof(due));
                return;
            }
            Ok(n) => {
                // The in-flight budget: wait (stop reading) while the window is full.
                let permit = tokio::select! {
                    p = sem.clone().acquire_many_owned(n as u32) => match p {
                        Ok(p) => p,
                        Err(_) => return, // the writer is gone
                    },
                    _ = abort.wait_for(|a| *a) => return,
                };
                if tx.send(Msg::Data(due, buf[..n].to_vec(), permit)).is_err() {
                    return;
                }
            }
            Err(_) => {
                let _ = tx.send(Msg::Reset(due));
                return;
            }
        }
    }
}

/// Tokio's timer has millisecond ticks and rounds deadlines up (about +1 ms per hop on average),
/// so the last stretch before a due time is slept precisely on a blocking-pool thread.
const COARSE_MARGIN: Duration = Duration::from_millis(2);

/// Waits until `due`, to within about 0.1 ms.
async fn wait_until(due: Instant) {
    let now = Instant::now();
    if due <= now {
        return;
    }
    if due - now > COARSE_MARGIN {
        sleep_until(due - COARSE_MARGIN).await;
    }
    let now = Instant::now();
    if due > now {
        let rest = due - now;
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// Writes queued chunks out at their due times, in order.
async fn writer(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    sem: Arc<Semaphore>,
    abort_tx: Arc<watch::Sender<bool>>,
    mut abort: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = abort.wait_for(|a| *a) => None,
        };
        let Some(msg) = msg else {
            // Aborted, or the reader vanished without a word: tear down.
            sem.close();
            let _ = wr.as_ref().set_zero_linger();
            wr.forget();
            return;
        };
        let due = match &msg {
            Msg::Data(due, ..) | Msg::Eof(due) | Msg::Reset(due) => *due,
        };
        tokio::select! {
            _ = wait_until(due) => {}
            _ = abort.wait_for(|a| *a) => {
                sem.close();
                let _ = wr.as_ref().set_zero_linger();
                wr.forget();
                return;
            }
        }
        match msg {
            Msg::Data(_, data, permit) => {
                let res = tokio::select! {
                    r = wr.write_all(&data) => r,
                    _ = abort.wait_for(|a| *a) => Err(std::io::ErrorKind::ConnectionAborted.into()),
                };
                drop(permit);
                if res.is_err() {
                    sem.close();
                    let _ = wr.as_ref().set_zero_linger();
                    wr.forget();
                    let _ = abort_tx.send(true);
                    return;
                }
            }
            Msg::Eof(_) => {
                // Half-close: the other direction keeps flowing.
                let _ = wr.shutdown().await;
                sem.close();
                return;
            }
            Msg::Reset(_) => {
                sem.close();
                let _ = wr.as_ref().set_zero_linger();
                wr.forget();
                let _ = abort_tx.send(true);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ports;

    #[test]
    fn ports_and_ranges() {
        let p = parse_ports(&["2221,31000-31002".into(), "2222".into()]).unwrap();
        assert_eq!(p, [2221, 2222, 31000, 31001, 31002]);
        assert!(parse_ports(&["5-3".into()]).is_err());
        assert!(parse_ports(&["".into()]).is_err());
    }
}
