//! The binary as scripts see it: exit codes, one-line errors, and passwords never shown.
//!
//! Helpers shared by the parts: a closed port, a scripted server that refuses the login with a
//! given reply, and the check that an error is one line.

mod args;
mod closed_output;
mod exit_codes;
mod json;
mod log_file;
mod passwords;
mod profiles;
mod terminal;

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn one_line_error(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{stderr}");
    assert!(lines[0].starts_with("ftpsync: "), "{stderr}");
    lines[0]
}

/// The reply a hostile server gives to PASS: retitles the window, clears the screen, ends in NUL.
const HOSTILE_REPLY: &[u8] = b"530 \x1b]0;pwned\x07\x1b[2J bad\0\r\n";

/// A scripted FTP server on a loopback port: greets, asks for the password, and answers `PASS`
/// with `reply` (anything else with 502). Serves every connection until the test ends.
fn refusing_server(reply: &'static [u8]) -> u16 {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut lines = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                let _ = out.write_all(b"220 scripted server\r\n");
                let mut line = Vec::new();
                while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let answer = match line.get(..4).map(|v| v.to_ascii_uppercase()) {
                        Some(v) if v == b"USER" => b"331 password please\r\n".as_slice(),
                        Some(v) if v == b"PASS" => reply,
                        _ => b"502 not here\r\n".as_slice(),
                    };
                    if out.write_all(answer).is_err() {
                        break;
                    }
                    line.clear();
                }
            });
        }
    });
    port
}
