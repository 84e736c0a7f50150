//! The control stream's outbox, against an in-process TLS server: pipelined commands leave
//! before the next read and before the next command suppaftp writes, in order.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use suppaftp::tokio::AsyncTlsConnector;
use suppaftp::tokio_rustls::TlsAcceptor;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::ftp::tls::{TlsConfig, TlsOptions};

/// A TLS server on loopback that reads `lines` command lines, then answers "200 ok"; returns
/// the client's secured control stream and what the server read.
async fn control_with_server(
    lines: usize,
) -> (ControlTls, Connector, tokio::task::JoinHandle<Vec<String>>) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let cert = CertificateDer::from(key.cert.der().to_vec());
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let tls = acceptor.accept(socket).await.expect("handshake");
        let mut tls = BufReader::new(tls);
        let mut read = Vec::new();
        for _ in 0..lines {
            let mut line = String::new();
            tls.read_line(&mut line).await.expect("a command");
            read.push(line);
        }
        tls.get_mut().write_all(b"200 ok\r\n").await.expect("reply");
        tls.get_mut().flush().await.expect("flush");
        read
    });
    let options = TlsOptions {
        insecure: true,
        ..TlsOptions::default()
    };
    let connector = TlsConfig::load(&options).expect("config").connector();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let control = connector.connect("localhost", tcp).await.expect("secured");
    (control, connector, server)
}

const SECOND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn commands_in_the_outbox_leave_before_the_next_read() {
    let (mut control, connector, server) = control_with_server(2).await;
    let outbox = connector
        .control_outbox()
        .expect("the first stream's outbox");
    outbox.push(b"SIZE a\r\nPASV\r\n");
    let mut reply = [0u8; 8];
    let read = tokio::time::timeout(SECOND, control.read_exact(&mut reply)).await;
    assert!(
        read.is_ok(),
        "the commands never left: the read waited for a reply"
    );
    assert_eq!(&reply, b"200 ok\r\n");
    assert_eq!(server.await.unwrap(), ["SIZE a\r\n", "PASV\r\n"]);
}

#[tokio::test]
async fn commands_in_the_outbox_go_before_the_next_command_written() {
    let (mut control, connector, server) = control_with_server(3).await;
    connector
        .control_outbox()
        .expect("the first stream's outbox")
        .push(b"RNFR a\r\nRNTO b\r\n");
    control.write_all(b"STOR c\r\n").await.expect("write");
    control.flush().await.expect("flush");
    let mut reply = [0u8; 8];
    let read = tokio::time::timeout(SECOND, control.read_exact(&mut reply)).await;
    assert!(read.is_ok(), "no reply");
    assert_eq!(
        server.await.unwrap(),
        ["RNFR a\r\n", "RNTO b\r\n", "STOR c\r\n"]
    );
}

#[tokio::test]
async fn only_the_first_stream_of_a_connector_gets_the_outbox() {
    let first = FirstOutbox::default();
    let control = first.register();
    let data = first.register();
    control.push(b"NOOP\r\n");
    assert_eq!(first.get().expect("kept").lock().as_slice(), b"NOOP\r\n");
    assert!(
        data.lock().is_empty(),
        "a data connection's outbox is its own"
    );
}

#[tokio::test]
async fn a_line_break_inside_a_command_is_refused() {
    assert!(refuse_line_breaks("STOR a\r\nb\r\n").is_ok());
    let err = refuse_line_breaks("STOR a\nDELE b\r\n").expect_err("smuggled command");
    assert!(err.to_string().contains("line break"), "{err}");
}
