//! `--checksum` against a hostile server of a few lines: it logs anyone in, and answers the
//! RETR of the manifest with a byte now and then, forever. Each byte comes well within
//! `--timeout`; only a deadline for the whole download ends it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{isolate_env, Tree};

/// Serves control connections on a thread each; returns the port.
fn start_trickling_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || session(conn));
        }
    });
    port
}

fn session(conn: TcpStream) {
    let mut out = conn.try_clone().unwrap();
    let mut data: Option<TcpListener> = None;
    let _ = out.write_all(b"220 hostile\r\n");
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply = match verb.as_str() {
            "USER" => "331 password\r\n".to_string(),
            "PASS" => "230 in\r\n".into(),
            "FEAT" => "211-Features:\r\n EPSV\r\n211 End\r\n".into(),
            "PWD" => "257 \"/\"\r\n".into(),
            "TYPE" | "OPTS" | "NOOP" => "200 ok\r\n".into(),
            "EPSV" => {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let p = l.local_addr().unwrap().port();
                data = Some(l);
                format!("229 Entering Extended Passive Mode (|||{p}|)\r\n")
            }
            "PASV" => {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let p = l.local_addr().unwrap().port();
                data = Some(l);
                format!(
                    "227 Entering Passive Mode (127,0,0,1,{},{})\r\n",
                    p >> 8,
                    p & 255
                )
            }
            "RETR" => match data.take() {
                Some(l) => {
                    std::thread::spawn(move || trickle(l));
                    "150 here it comes\r\n".into()
                }
                None => "425 no data connection\r\n".into(),
            },
            "QUIT" => {
                let _ = out.write_all(b"221 bye\r\n");
                return;
            }
            _ => "502 not here\r\n".into(),
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A byte every 200 ms, until the client hangs up.
fn trickle(listener: TcpListener) {
    let Ok((mut conn, _)) = listener.accept() else {
        return;
    };
    loop {
        if conn.write_all(b" ").is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_trickling_manifest_ends_at_the_deadline() {
    let port = start_trickling_server();
    let local = Tree::new();
    local.write("a.txt", "a");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ftpsync"));
    isolate_env(&mut cmd);
    let state = tempfile::tempdir().unwrap();
    let mut child = cmd
        .env("XDG_STATE_HOME", state.path())
        .env("FTPSYNC_LISTING_DEADLINE_SECS", "3")
        .args(["--checksum", "--json", "-j", "1", "--retries", "1"])
        .args(["--timeout", "10"])
        .arg(local.path())
        .arg(format!("ftp://u:p@127.0.0.1:{port}/site"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("still reading the trickling manifest after 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("RETR"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(15), "{out}");
}
