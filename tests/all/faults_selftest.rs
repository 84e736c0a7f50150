//! Tests of the fault-injecting FTP proxy (`tests/all/support/faults/`) itself, with suppaftp
//! as the client and the in-process FTP server behind the proxy.

use std::time::{Duration, Instant};

use ftpsync::listing::{parse_list_line, parse_mlsd_line, EntryKind};
use suppaftp::tokio::AsyncFtpStream;
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::faults::{Fault, FaultProxy, Listing};
use crate::support::{self, FtpServer};

/// A client logged in through `proxy`, in binary mode.
async fn client(proxy: &FaultProxy) -> AsyncFtpStream {
    let mut ftp = AsyncFtpStream::connect(("127.0.0.1", proxy.port))
        .await
        .expect("connect through the proxy");
    ftp.login("test", "secret").await.expect("log in");
    ftp.transfer_type(FileType::Binary).await.expect("TYPE I");
    ftp
}

/// Uploads `bytes` to `path` with STOR.
async fn put(ftp: &mut AsyncFtpStream, path: &str, bytes: &[u8]) -> Result<(), FtpError> {
    let mut upload = ftp.put_with_stream(path).await?;
    upload
        .write_all(bytes)
        .await
        .map_err(FtpError::ConnectionError)?;
    upload.finish().await
}

/// Downloads `path` with RETR.
async fn get(ftp: &mut AsyncFtpStream, path: &str) -> Vec<u8> {
    let mut download = ftp.retr_as_stream(path).await.expect("RETR");
    let mut bytes = Vec::new();
    download.read_to_end(&mut bytes).await.expect("read data");
    download.finish().await.expect("RETR reply");
    bytes
}

/// `len` bytes that are unlikely to survive a transfer bug unchanged.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The reply code of an error, if the server (or proxy) answered one.
fn code(err: &FtpError) -> Option<u32> {
    match err {
        FtpError::UnexpectedResponse(response) => Some(response.status.code()),
        _ => None,
    }
}

/// Waits (at most 10 s) until `condition` holds.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn relays_a_whole_session_unchanged() {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), vec![]);
    let mut ftp = client(&proxy).await;

    // FEAT's reply spans several lines; the proxy must not lose track of where it ends.
    let features = ftp.feat().await.expect("FEAT");
    assert!(features.keys().any(|key| key == "MLST"), "{features:?}");
    ftp.mkdir("dir").await.expect("MKD");
    let bytes = payload(1 << 20);
    put(&mut ftp, "dir/big.bin", &bytes).await.expect("STOR");
    assert!(
        std::fs::read(server.remote_dir("dir/big.bin")).unwrap() == bytes,
        "the server did not get the exact bytes"
    );
    let listing = ftp.mlsd(Some("dir")).await.expect("MLSD");
    assert!(
        listing.iter().any(|line| line.ends_with("; big.bin")),
        "{listing:?}"
    );
    assert!(get(&mut ftp, "dir/big.bin").await == bytes, "RETR differs");

    // The same over EPSV.
    ftp.set_mode(Mode::ExtendedPassive);
    put(&mut ftp, "dir/small.bin", b"epsv").await.expect("STOR");
    assert_eq!(get(&mut ftp, "dir/small.bin").await, b"epsv");
    ftp.quit().await.expect("QUIT");

    let commands = proxy.commands();
    for expected in [
        "USER test",
        "PASS secret",
        "TYPE I",
        "MKD dir",
        "PASV",
        "EPSV",
    ] {
        assert!(
            commands.iter().any(|c| c == expected),
            "{expected} not in {commands:?}"
        );
    }
    assert!(commands.iter().any(|c| c == "STOR dir/big.bin"));
    assert_eq!(proxy.peak_connections(), 1);
    assert_eq!(
        proxy.url(&server.url("dir/x")),
        format!("ftp://test:secret@127.0.0.1:{}/dir/x", proxy.port)
    );
}

#[tokio::test]
async fn drop_upload_after_cuts_the_data_and_control_connections() {
    let server = FtpServer::start();
    let fault = Fault::DropUploadAfter {
        path: "big".into(),
        after_bytes: 100_000,
        times: 2,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![fault]);
    let mut ftp = client(&proxy).await;

    // Too short to be cut: not touched, and no firing used up.
    put(&mut ftp, "big-but-small.bin", &payload(1000))
        .await
        .expect("a short upload goes through");
    assert_eq!(proxy.fired(0), 0);

    let bytes = payload(1 << 20);
    let result = put(&mut ftp, "big.bin", &bytes).await;
    assert!(result.is_err(), "the cut upload succeeded");
    assert_eq!(proxy.fired(0), 1);
    let stored = std::fs::metadata(server.remote_dir("big.bin")).map_or(0, |m| m.len());
    assert!(stored <= 100_000, "the server got {stored} bytes");
    assert!(ftp.noop().await.is_err(), "the control connection survived");

    // Over EPSV too.
    let mut ftp = client(&proxy).await;
    ftp.set_mode(Mode::ExtendedPassive);
    assert!(put(&mut ftp, "big.bin", &bytes).await.is_err());
    assert_eq!(proxy.fired(0), 2);

    // Fired twice: the next retry, on a new connection, goes through.
    let mut ftp = client(&proxy).await;
    put(&mut ftp, "big.bin", &bytes).await.expect("the retry");
    assert!(std::fs::read(server.remote_dir("big.bin")).unwrap() == bytes);
    assert_eq!(proxy.fired(0), 2);
}

#[tokio::test]
async fn reset_on_breaks_the_connection_before_the_command_arrives() {
    let server = FtpServer::start();
    let fault = Fault::ResetOn {
        command: "MKD".into(),
        path: "doomed".into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![fault]);
    let mut ftp = client(&proxy).await;

    ftp.mkdir("fine")
        .await
        .expect("another path is not faulted");
    match ftp.mkdir("doomed").await {
        Err(FtpError::ConnectionError(_)) => {}
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert!(!server.remote_dir("doomed").exists());
    assert_eq!(proxy.fired(0), 1);
    assert!(proxy.commands().iter().any(|c| c == "MKD doomed"));

    let mut ftp = client(&proxy).await;
    ftp.mkdir("doomed").await.expect("fired once only");
    assert!(server.remote_dir("doomed").is_dir());
}

#[tokio::test]
async fn stall_on_leaves_the_command_unanswered_until_the_client_gives_up() {
    let server = FtpServer::start();
    let faults = vec![
        Fault::StallOn {
            command: "MKD".into(),
            path: "slow".into(),
            times: 1,
        },
        Fault::StallOn {
            command: "MLSD".into(),
            path: "".into(),
            times: 1,
        },
    ];
    let proxy = FaultProxy::start(&server.addr(), faults);

    let mut ftp = client(&proxy).await;
    let stalled = tokio::time::timeout(Duration::from_secs(1), ftp.mkdir("slow")).await;
    assert!(stalled.is_err(), "MKD was answered: {stalled:?}");
    assert!(
        !server.remote_dir("slow").exists(),
        "MKD reached the server"
    );
    // The proxy holds the connection open until the client closes it.
    assert_eq!(proxy.open_connections(), 1);
    drop(ftp);
    wait_until("the proxy sees the close", || proxy.open_connections() == 0).await;

    // A stalled transfer command, with its data connection already open.
    let mut ftp = client(&proxy).await;
    let stalled = tokio::time::timeout(Duration::from_secs(1), ftp.mlsd(None)).await;
    assert!(stalled.is_err(), "MLSD was answered: {stalled:?}");
    assert_eq!((proxy.fired(0), proxy.fired(1)), (1, 1));

    let mut ftp = client(&proxy).await;
    ftp.mkdir("slow").await.expect("fired once only");
    ftp.mlsd(None).await.expect("fired once only");
}

#[tokio::test]
async fn max_connections_refuses_the_one_too_many() {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), vec![Fault::MaxConnections { max: 2 }]);
    let mut first = client(&proxy).await;
    let _second = client(&proxy).await;

    match AsyncFtpStream::connect(("127.0.0.1", proxy.port)).await {
        Err(err) => assert_eq!(code(&err), Some(421), "{err:?}"),
        Ok(_) => panic!("a third connection was accepted"),
    }
    assert_eq!(proxy.fired(0), 1);
    assert_eq!(proxy.peak_connections(), 2);
    assert_eq!(
        server.open_connections(),
        2,
        "the refused one reached the server"
    );

    // Only connections open now count.
    first.quit().await.expect("QUIT");
    wait_until("the proxy sees the close", || proxy.open_connections() == 1).await;
    let _third = client(&proxy).await;
    assert_eq!(proxy.fired(0), 1);
    assert_eq!(proxy.peak_connections(), 2);
}

#[tokio::test]
async fn reply_answers_in_place_of_the_server() {
    let server = FtpServer::start();
    let faults = vec![
        Fault::Reply {
            command: "STOR".into(),
            path: "full".into(),
            reply: "452 Insufficient storage space".into(),
            times: usize::MAX,
        },
        Fault::Reply {
            command: "MKD".into(),
            path: "".into(),
            reply: "550 Permission denied".into(),
            times: 1,
        },
    ];
    let proxy = FaultProxy::start(&server.addr(), faults);
    let mut ftp = client(&proxy).await;

    for attempt in 1..=2 {
        match ftp.put_with_stream("full.bin").await {
            Err(err) => assert_eq!(code(&err), Some(452), "{err:?}"),
            Ok(_) => panic!("STOR was accepted"),
        }
        assert_eq!(proxy.fired(0), attempt);
    }
    assert!(!server.remote_dir("full.bin").exists());
    // The connection is still in step: the next transfer works.
    put(&mut ftp, "other.bin", b"fits").await.expect("STOR");
    assert_eq!(
        std::fs::read(server.remote_dir("other.bin")).unwrap(),
        b"fits"
    );

    let err = ftp.mkdir("dir").await.expect_err("MKD was forwarded");
    assert_eq!(code(&err), Some(550));
    assert!(!server.remote_dir("dir").exists());
    ftp.mkdir("dir").await.expect("fired once only");
    assert_eq!(proxy.fired(1), 1);
}

#[test]
fn works_from_a_plain_test_and_stops_on_drop() {
    use std::io::{BufRead, BufReader};

    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), vec![]);
    let addr = format!("127.0.0.1:{}", proxy.port);
    let stream = std::net::TcpStream::connect(&addr).unwrap();
    let mut greeting = String::new();
    BufReader::new(&stream).read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("220"), "{greeting:?}");
    drop(proxy);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "port still open after drop"
    );
}

/// The proxy in front of each real server that is configured (see `support::real_servers`):
/// a session with transfers both ways, and a cut upload.
#[tokio::test]
async fn works_in_front_of_real_servers() {
    for server in support::real_servers() {
        let name = server.name;
        let (_url, dir) = server.scratch("faults_selftest");
        let url = url::Url::parse(&server.url).unwrap();
        let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(21));
        let fault = Fault::DropUploadAfter {
            path: "cut.bin".into(),
            after_bytes: 200_000,
            times: 1,
        };
        let proxy = FaultProxy::start(&upstream, vec![fault]);
        let login = async || {
            let mut ftp = AsyncFtpStream::connect(("127.0.0.1", proxy.port))
                .await
                .unwrap();
            let password = url.password().unwrap_or_default();
            ftp.login(url.username(), password).await.unwrap();
            ftp.transfer_type(FileType::Binary).await.unwrap();
            ftp
        };

        let mut ftp = login().await;
        ftp.mkdir("faults_selftest").await.unwrap();
        ftp.cwd("faults_selftest").await.unwrap();
        let bytes = payload(3 << 20);
        put(&mut ftp, "whole.bin", &bytes).await.unwrap();
        assert!(
            std::fs::read(dir.join("whole.bin")).unwrap() == bytes,
            "{name}"
        );
        assert!(get(&mut ftp, "whole.bin").await == bytes, "{name}");
        let listing = ftp.list(None).await.unwrap();
        assert!(
            listing.iter().any(|l| l.ends_with(" whole.bin")),
            "{name}: {listing:?}"
        );

        assert!(put(&mut ftp, "cut.bin", &bytes).await.is_err(), "{name}");
        assert_eq!(proxy.fired(0), 1, "{name}");
        let stored = std::fs::metadata(dir.join("cut.bin")).map_or(0, |m| m.len());
        assert!(stored <= 200_000, "{name}: the server got {stored} bytes");
        let mut ftp = login().await;
        put(&mut ftp, "faults_selftest/cut.bin", &bytes)
            .await
            .unwrap();
        assert!(
            std::fs::read(dir.join("cut.bin")).unwrap() == bytes,
            "{name}"
        );
    }
}

/// How a listing read by [`listing_lines`] went.
struct Listed {
    lines: Vec<String>,
    /// The error that ended it early (a clean end is not an error).
    error: Option<std::io::Error>,
    /// Its final reply, if it ended cleanly.
    done: Option<Result<(), FtpError>>,
}

/// Opens the listing `command` (e.g. `"MLSD dir"`) and reads up to `max` of its lines.
async fn listing_lines(ftp: &mut AsyncFtpStream, command: &str, max: usize) -> Listed {
    use tokio::io::AsyncBufReadExt;
    let opening = [Status::AboutToSend, Status::AlreadyOpen];
    let (_, data) = ftp
        .custom_data_command(command, &opening)
        .await
        .expect("the listing opens");
    let mut data = tokio::io::BufReader::new(data);
    let mut lines = Vec::new();
    while lines.len() < max {
        let mut line = String::new();
        match data.read_line(&mut line).await {
            Ok(0) => {
                let done = Some(data.into_inner().finish().await);
                return Listed {
                    lines,
                    error: None,
                    done,
                };
            }
            Ok(_) => lines.push(line.trim_end().to_string()),
            Err(e) => {
                return Listed {
                    lines,
                    error: Some(e),
                    done: None,
                }
            }
        }
    }
    Listed {
        lines,
        error: None,
        done: None,
    }
}

fn serve(command: &str, listing: Listing) -> Fault {
    Fault::ServeListing {
        command: command.into(),
        path: "".into(),
        listing,
        times: usize::MAX,
    }
}

#[tokio::test]
async fn serve_listing_endless_sends_valid_entries_without_end() {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), vec![serve("MLSD", Listing::Endless)]);
    let mut ftp = client(&proxy).await;
    let Listed { lines, error, .. } = listing_lines(&mut ftp, "MLSD", 300_000).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(lines.len(), 300_000, "the listing ended");
    for line in [&lines[0], &lines[299_999]] {
        let entry = parse_mlsd_line(line).unwrap().expect("an entry");
        assert_eq!(entry.kind, EntryKind::File, "{line}");
    }
    assert_ne!(lines[0], lines[299_999]);
    assert_eq!(proxy.fired(0), 1);
}

#[tokio::test]
async fn serve_listing_trickle_sends_one_line_per_interval_without_end() {
    let server = FtpServer::start();
    let every = Duration::from_millis(200);
    let proxy = FaultProxy::start(
        &server.addr(),
        vec![serve("LIST", Listing::Trickle { every })],
    );
    let mut ftp = client(&proxy).await;
    let started = Instant::now();
    let Listed { lines, error, .. } = listing_lines(&mut ftp, "LIST -a", 4).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(lines.len(), 4, "the listing ended");
    // Four lines take at least three intervals.
    assert!(started.elapsed() >= every * 3, "{:?}", started.elapsed());
    let entry = parse_list_line(&lines[3], 0).unwrap().expect("an entry");
    assert_eq!(
        (entry.name.as_str(), entry.kind),
        ("f000000004", EntryKind::File)
    );
}

#[tokio::test]
async fn serve_listing_nested_lists_a_folder_d_in_every_folder_and_ends() {
    let server = FtpServer::start();
    let proxy = FaultProxy::start(&server.addr(), vec![serve("", Listing::Nested)]);
    let mut ftp = client(&proxy).await;
    for (command, mlsd) in [("MLSD", true), ("MLSD d/d/d", true), ("LIST -a d/d", false)] {
        let Listed { lines, error, done } = listing_lines(&mut ftp, command, 10).await;
        assert!(error.is_none(), "{command}: {error:?}");
        let entries: Vec<_> = lines
            .iter()
            .map(|line| match mlsd {
                true => parse_mlsd_line(line),
                false => parse_list_line(line, 0),
            })
            .map(|parsed| parsed.unwrap().expect("an entry"))
            .map(|e| (e.name, e.kind))
            .collect();
        let want = [
            ("d".to_string(), EntryKind::Dir),
            ("f".into(), EntryKind::File),
        ];
        assert_eq!(entries, want, "{command}");
        // The listing ended with its 226: the connection is ready for the next command.
        assert!(matches!(done, Some(Ok(()))), "{command}: {done:?}");
    }
    assert!(!server.remote_dir("d").exists());
}

#[tokio::test]
async fn cut_listing_resets_the_data_connection_after_n_lines() {
    let server = FtpServer::start();
    let dir = server.remote_dir("cut");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..10 {
        std::fs::write(dir.join(format!("f{i}")), "x").unwrap();
    }
    let fault = Fault::CutListing {
        command: "MLSD".into(),
        path: "cut".into(),
        after_lines: 3,
        times: 1,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![fault]);
    let mut ftp = client(&proxy).await;
    let Listed { lines, error, .. } = listing_lines(&mut ftp, "MLSD cut", 100).await;
    assert!(lines.len() <= 3, "{lines:?}");
    assert!(
        error.is_some(),
        "the cut looked like a clean end after {lines:?}"
    );
    assert_eq!(proxy.fired(0), 1);

    // Fired once: the next listing is whole.
    let mut ftp = client(&proxy).await;
    let Listed { lines, done, .. } = listing_lines(&mut ftp, "MLSD cut", 100).await;
    assert!(matches!(done, Some(Ok(()))), "{done:?}");
    assert_eq!(lines.len(), 10, "{lines:?}");
}

/// One whole reply, as raw bytes: lines up to one that starts `ddd `.
async fn read_reply(control: &mut tokio::io::BufReader<tokio::net::TcpStream>) -> Vec<u8> {
    use tokio::io::AsyncBufReadExt;
    let mut reply = Vec::new();
    loop {
        let start = reply.len();
        let n = control.read_until(b'\n', &mut reply).await.unwrap();
        assert!(n > 0, "the connection closed after {reply:?}");
        let line = &reply[start..];
        if line.len() > 3 && line[..3].iter().all(u8::is_ascii_digit) && line[3] == b' ' {
            return reply;
        }
    }
}

#[tokio::test]
async fn reply_passes_escape_sequences_and_nul_through_byte_for_byte() {
    let server = FtpServer::start();
    let hostile = "530-\x1b]0;pwned\x07 first\r\n530 \x1b[2J\0\x1b[31mdenied\x1b[0m";
    let fault = Fault::Reply {
        command: "PASS".into(),
        path: "".into(),
        reply: hostile.into(),
        times: 1,
    };
    let proxy = FaultProxy::start(&server.addr(), vec![fault]);
    let control = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
        .await
        .unwrap();
    let mut control = tokio::io::BufReader::new(control);
    assert!(read_reply(&mut control).await.starts_with(b"220"));
    control.get_mut().write_all(b"USER test\r\n").await.unwrap();
    assert!(read_reply(&mut control).await.starts_with(b"331"));
    control
        .get_mut()
        .write_all(b"PASS secret\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut control).await;
    assert_eq!(reply, format!("{hostile}\r\n").into_bytes());
    assert_eq!(proxy.fired(0), 1);
}
