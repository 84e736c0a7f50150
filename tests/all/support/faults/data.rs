//! The data connections: each one relayed to the server's passive port as its command
//! planned it, cut after so many bytes or lines, or answered with the proxy's own listing.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::session::reset_on_close;
use super::shared::{Cut, Plan, Shared};
use super::Listing;

/// How a data connection ended.
pub(super) enum Outcome {
    Done,
    /// A [`Fault::DropUploadAfter`](super::Fault::DropUploadAfter) cut it: the session must
    /// reset its control connection too.
    Cut,
    /// The proxy's own listing ended; the session sends this final reply.
    Served(&'static str),
}

/// Serves one passive data connection: waits for the client to connect to `listener` (telling
/// `connected` when it did) and for the session to say which command it is for (`plan`), then
/// relays it to `server`.
pub(super) async fn transfer(
    shared: Arc<Shared>,
    listener: TcpListener,
    server: SocketAddr,
    (plan, connected): (oneshot::Receiver<Plan>, oneshot::Sender<()>),
) -> Outcome {
    // Clients usually connect as soon as they have the 227 reply, before they send the command,
    // but need not. A connection that never comes waits for the session to end (and drop it).
    let accepting = async {
        let accepted = listener.accept().await;
        if accepted.is_ok() {
            let _ = connected.send(());
        }
        accepted
    };
    let (plan, accepted) = tokio::join!(plan, accepting);
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

/// Sends [`Fault::ServeListing`](super::Fault::ServeListing)'s listing to `client`, until it
/// ends or the client hangs up.
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
        Listing::Names(names) => {
            let lines: String = names.iter().map(|n| entry_line(n, false, mlsd)).collect();
            if client.write_all(lines.as_bytes()).await.is_err() {
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
/// the client's side ([`Fault::CutListing`](super::Fault::CutListing)).
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
/// the fault has firings left: the bytes up to that point are forwarded and the server's side
/// closed, then the client's reset.
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
                // The server keeps exactly these bytes: its side ends (FIN) and its close is
                // awaited, so that it is done with them before the client learns of the cut
                // (a reset could make it drop what it had not read yet, more or less by load).
                let _ = server.shutdown().await;
                let mut rest = [0u8; 1024];
                let closed =
                    async { while matches!(server.read(&mut rest).await, Ok(n) if n > 0) {} };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), closed).await;
                reset_on_close(&client);
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
