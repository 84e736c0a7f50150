//! Pipelined commands on a plain (unencrypted) control connection: several commands sent in one
//! write, their replies read afterwards in order, and transfer commands sent while the data
//! connection opens. An upload then costs five round trips (PASV; STOR while the data
//! connection opens; data and 226; SIZE; RNFR, RNTO and MFMT together) instead of eight, and a
//! listing three instead of four: what decides the speed of many small files over a real link.
//! Commands are only pipelined where a failure of an earlier one cannot make a later one do
//! harm: the rename waits for the 226 and the size check that confirm the upload.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use suppaftp::tokio::AsyncRustlsFtpStream;
use suppaftp::Status;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ftp::{send_bytes, within, FtpError, UploadError};

type Stream = AsyncRustlsFtpStream;

/// What a pipelined atomic upload did.
#[derive(Debug)]
pub struct Stored {
    /// Bytes sent (from the offset on).
    pub sent: u64,
    /// The outcome of setting the modification time, when asked.
    pub time_set: Option<Result<(), FtpError>>,
}

/// An atomic upload: `local` from byte `offset` to `temp` (APPE when resuming), size check,
/// rename over `target`, and the time command `set_time` (e.g. `MFMT 20240102030405 path`).
pub struct Upload<'a> {
    pub temp: &'a str,
    pub target: &'a str,
    pub local: &'a Path,
    pub offset: u64,
    /// Total size the temporary file must have; checked with SIZE when Some.
    pub expect_size: Option<u64>,
    pub set_time: Option<String>,
    /// Asked after the transfer, before the rename: false when the local file changed meanwhile
    /// (the upload is then not renamed into place).
    pub still_same: &'a (dyn Fn() -> bool + Sync),
}

/// Writes `commands` to the control connection in one go (each ends with CRLF).
async fn send(stream: &Stream, commands: &str, timeout: Duration) -> Result<(), FtpError> {
    // One command per CRLF: a line break inside a path would smuggle in another command.
    if commands
        .split_terminator("\r\n")
        .any(|c| c.contains(['\r', '\n']))
    {
        return Err(FtpError::Connection {
            operation: first_word(commands).into(),
            detail: "a path contains a line break".into(),
        });
    }
    let socket = stream.get_ref().await;
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

fn first_word(commands: &str) -> &str {
    commands.split([' ', '\r']).next().unwrap_or("command")
}

/// Reads one reply; Err when its code is not one of `expected` (the reply is consumed either way).
async fn reply(
    stream: &mut Stream,
    operation: &str,
    expected: &[Status],
    timeout: Duration,
) -> Result<String, FtpError> {
    let response = within(
        timeout,
        operation.to_string(),
        stream.read_response_in(expected),
    )
    .await?;
    Ok(String::from_utf8_lossy(&response.body).trim().to_string())
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

/// PASV, then the command sent while the data connection opens; returns the data connection
/// once the command's preliminary reply came, or the command's refusal.
async fn open_data(
    stream: &mut Stream,
    command: &str,
    timeout: Duration,
) -> Result<TcpStream, FtpError> {
    let peer = stream
        .get_ref()
        .await
        .peer_addr()
        .map_err(|e| FtpError::Connection {
            operation: "PASV".into(),
            detail: e.to_string(),
        })?;
    send(stream, "PASV\r\n", timeout).await?;
    let pasv = reply(stream, "PASV", &[Status::PassiveMode], timeout).await?;
    let data_addr = passive_address(&pasv, peer).ok_or_else(|| FtpError::Connection {
        operation: "PASV".into(),
        detail: format!("unreadable reply {pasv:?}"),
    })?;
    send(stream, &format!("{command}\r\n"), timeout).await?;
    let connect = async {
        TcpStream::connect(data_addr)
            .await
            .map_err(suppaftp::FtpError::ConnectionError)
    };
    let data = within(timeout, command.to_string(), connect).await;
    let opened = reply(
        stream,
        command,
        &[Status::AboutToSend, Status::AlreadyOpen],
        timeout,
    )
    .await;
    let data = match (data, opened) {
        (Ok(data), Ok(_)) => data,
        (_, Err(e)) | (Err(e), Ok(_)) => return Err(e),
    };
    data.set_nodelay(true).ok();
    Ok(data)
}

/// A folder listing (`MLSD path`, `LIST -a path`, ...), its lines decoded as lossy UTF-8.
pub async fn list(
    stream: &mut Stream,
    verb: &str,
    argument: &str,
    timeout: Duration,
) -> Result<Vec<String>, FtpError> {
    let command = if argument.is_empty() {
        verb.to_string()
    } else {
        format!("{verb} {argument}")
    };
    let mut data = open_data(stream, &command, timeout).await?;
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = async {
            data.read(&mut chunk)
                .await
                .map_err(suppaftp::FtpError::ConnectionError)
        };
        match within(timeout, command.clone(), read).await? {
            0 => break,
            n => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    drop(data);
    let done = [Status::ClosingDataConnection, Status::RequestedFileActionOk];
    reply(stream, &command, &done, timeout).await?;
    Ok(bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect())
}

/// Uploads `up` with its commands pipelined; see the module header for the exchanges.
pub async fn store(
    stream: &mut Stream,
    up: Upload<'_>,
    timeout: Duration,
) -> Result<Stored, UploadError> {
    let mut file = tokio::fs::File::open(up.local)
        .await
        .map_err(UploadError::Local)?;
    if up.offset > 0 {
        file.seek(std::io::SeekFrom::Start(up.offset))
            .await
            .map_err(UploadError::Local)?;
    }
    // 1-2. PASV; the transfer command travels while the data connection opens.
    let verb = if up.offset > 0 { "APPE" } else { "STOR" };
    let operation = format!("{verb} {}", up.temp);
    let mut data = open_data(stream, &operation, timeout).await?;

    // 3. The bytes, then the 226.
    let sent = send_bytes(&mut file, &mut data, timeout, &operation).await?;
    let close = async {
        data.shutdown()
            .await
            .map_err(suppaftp::FtpError::ConnectionError)
    };
    within(timeout, operation.clone(), close).await?;
    drop(data);
    let done = [Status::ClosingDataConnection, Status::RequestedFileActionOk];
    reply(stream, &operation, &done, timeout).await?;
    // The size check waits for the 226: some servers (pure-ftpd) refuse commands that arrive
    // while a transfer is finishing.
    if let Some(expected) = up.expect_size {
        send(stream, &format!("SIZE {}\r\n", up.temp), timeout).await?;
        let size = reply(stream, "SIZE", &[Status::File], timeout).await?;
        let stored: Option<u64> = size.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        if stored != Some(expected) {
            return Err(FtpError::Connection {
                operation,
                detail: format!("the server stored {stored:?} bytes of {expected}"),
            }
            .into());
        }
    }

    if !(up.still_same)() {
        return Err(UploadError::Changed);
    }

    // 4. Rename and time, in one write.
    let mut batch = format!("RNFR {}\r\nRNTO {}\r\n", up.temp, up.target);
    if let Some(command) = &up.set_time {
        batch.push_str(command);
        batch.push_str("\r\n");
    }
    send(stream, &batch, timeout).await?;
    let from = reply(stream, "RNFR", &[Status::RequestFilePending], timeout).await;
    let to = reply(
        stream,
        "RNTO",
        &[Status::RequestedFileActionOk, Status::CommandOk],
        timeout,
    )
    .await;
    let time_set = match &up.set_time {
        Some(command) => {
            let accepted = [
                Status::File,
                Status::CommandOk,
                Status::RequestedFileActionOk,
            ];
            Some(
                reply(stream, first_word(command), &accepted, timeout)
                    .await
                    .map(|_| ()),
            )
        }
        None => None,
    };
    from?;
    to?;
    Ok(Stored { sent, time_set })
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
