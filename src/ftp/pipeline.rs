//! Pipelined commands, over plain FTP and TLS alike (see [`crate::ftp::channel`]): several
//! commands sent in one write and their replies read afterwards in order, the passive address
//! read from a PASV reply, and listings with the command sent while the data connection opens
//! (three round trips instead of four). The upload chain built on these is in [`crate::ftp::chain`].

use std::net::SocketAddr;
use std::time::Duration;

use suppaftp::Status;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

pub(crate) use super::channel::Control;
use super::channel::{open_data, Data};
use super::error::{within, FtpError};

/// Writes `commands` to the plain control socket `socket`, each write bounded by `timeout`.
pub(crate) async fn write_all(
    socket: &TcpStream,
    commands: &str,
    timeout: Duration,
) -> Result<(), FtpError> {
    let bytes = commands.as_bytes();
    let mut written = 0;
    while written < bytes.len() {
        let ready = async {
            socket
                .writable()
                .await
                .map_err(suppaftp::FtpError::ConnectionError)
        };
        within(timeout, first_word(commands), ready).await?;
        match socket.try_write(&bytes[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                return Err(FtpError::Connection {
                    operation: first_word(commands).into(),
                    detail: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

pub(crate) fn first_word(commands: &str) -> &str {
    commands.split([' ', '\r']).next().unwrap_or("command")
}

/// Reads one reply; Err when its code is not one of `expected` (the reply is consumed either way).
pub(crate) async fn reply(
    stream: &mut Control,
    operation: &str,
    expected: &[Status],
    timeout: Duration,
) -> Result<String, FtpError> {
    let response = within(
        timeout,
        operation.to_string(),
        stream.ftp.read_response_in(expected),
    )
    .await?;
    Ok(crate::ftp::error::one_line(&String::from_utf8_lossy(
        &response.body,
    )))
}

/// The data address a PASV reply names, at the control connection's own peer address (the
/// address in the reply may be a private one behind NAT).
fn passive_address(text: &str, peer: SocketAddr) -> Option<SocketAddr> {
    let inside = text.split_once('(')?.1.split_once(')')?.0;
    let numbers: Vec<u16> = inside
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<_>>()?;
    let [.., hi, lo] = numbers[..] else {
        return None;
    };
    if numbers.len() != 6 || hi > 255 || lo > 255 {
        return None;
    }
    Some(SocketAddr::new(peer.ip(), hi * 256 + lo))
}

pub(crate) async fn peer_of(stream: &Control) -> Result<SocketAddr, FtpError> {
    stream
        .ftp
        .get_ref()
        .await
        .peer_addr()
        .map_err(|e| FtpError::Connection {
            operation: "PASV".into(),
            detail: e.to_string(),
        })
}

/// Reads a PASV reply and turns it into the data address.
pub(crate) async fn read_pasv(
    stream: &mut Control,
    peer: SocketAddr,
    timeout: Duration,
) -> Result<SocketAddr, FtpError> {
    let pasv = reply(stream, "PASV", &[Status::PassiveMode], timeout).await?;
    passive_address(&pasv, peer).ok_or_else(|| FtpError::Garbled {
        operation: "PASV".into(),
        reply: pasv,
    })
}

pub(crate) const PRELIMINARY: [Status; 2] = [Status::AboutToSend, Status::AlreadyOpen];
pub(crate) const TRANSFER_DONE: [Status; 2] =
    [Status::ClosingDataConnection, Status::RequestedFileActionOk];

/// Opens the data connection of a listing command (`MLSD path`, `LIST -a path`, ...): PASV,
/// then the command sent while the data connection opens. Returns it once the server's 150
/// came; the caller reads the listing, then the final reply.
pub(crate) async fn open_listing(
    stream: &mut Control,
    command: &str,
    timeout: Duration,
) -> Result<Data, FtpError> {
    let peer = peer_of(stream).await?;
    stream.send("PASV\r\n", timeout).await?;
    let addr = read_pasv(stream, peer, timeout).await?;
    stream.send(&format!("{command}\r\n"), timeout).await?;
    connect_transfer(stream, addr, command, false, timeout).await
}

/// A transfer command's data connection, once the command went out and its PASV reply gave
/// `addr`: opened while the command's preliminary reply (150) is read. `download` (the server
/// sends, the client only reads) half-closes a plain data connection as soon as it is open: a
/// server that waits for the client's end before its 226 (vsftpd) finds it there already, a
/// round trip sooner. A refusal in place of the 150 gives up the data connection.
pub(crate) async fn connect_transfer(
    stream: &mut Control,
    addr: SocketAddr,
    command: &str,
    download: bool,
    timeout: Duration,
) -> Result<Data, FtpError> {
    let tls = stream.data_tls();
    // A refusal (550: no such folder) means no data connection: over TLS the handshake would
    // wait for a server that never takes it, so it is given up.
    let refused = CancellationToken::new();
    let opening = async {
        let mut data = tokio::select! {
            data = open_data(addr, command, tls.as_ref(), timeout) => data,
            _ = refused.cancelled() => return None,
        };
        if let (true, Ok(Either::Left(plain))) = (download, &mut data) {
            let _ = plain.shutdown().await;
        }
        Some(data)
    };
    let reading = async {
        let opened = reply(stream, command, &PRELIMINARY, timeout).await;
        if opened.is_err() {
            refused.cancel();
        }
        opened
    };
    let (data, opened) = tokio::join!(opening, reading);
    opened?;
    data.unwrap_or_else(|| unreachable!("given up only when refused"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_reply_is_read_at_the_control_peer() {
        let peer: SocketAddr = "10.0.0.5:21".parse().unwrap();
        let addr = passive_address("227 Entering Passive Mode (192,168,1,2,117,48).", peer);
        assert_eq!(addr, Some("10.0.0.5:30000".parse().unwrap()));
        assert_eq!(passive_address("227 nonsense", peer), None);
        assert_eq!(passive_address("227 (1,2,3,4,300,1)", peer), None);
    }
}
