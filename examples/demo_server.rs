//! A throwaway FTP server to try ftpsync against, accepting any login:
//!
//! ```text
//! cargo run --example demo_server -- [--port 2121] [DIR]
//! ```
//!
//! Serves DIR (default: a new temporary folder, printed) on 127.0.0.1. `--port 0` picks a free
//! port; the line printed at start-up says which. Runs until killed (Ctrl-C).

use std::path::PathBuf;

use tokio::net::TcpListener;

const USAGE: &str =
    "usage: demo_server [--port PORT] [DIR]   (default port 2121, 0 = any free port)";

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("demo_server: {err}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut port: u16 = 2121;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" | "-p" => port = args.next().ok_or(USAGE)?.parse().map_err(|_| USAGE)?,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if arg.starts_with('-') || dir.is_some() => return Err(USAGE.into()),
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let dir = match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            dir.canonicalize()?
        }
        None => tempfile::Builder::new()
            .prefix("ftpsync-demo-")
            .tempdir()?
            .keep(),
    };

    // Bind the control port ourselves so that `--port 0` can report the port it got.
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    println!(
        "demo FTP server on ftp://127.0.0.1:{port}/ serving {} (Ctrl-C to stop)",
        dir.display()
    );

    loop {
        let (stream, _) = listener.accept().await?;
        let root = dir.clone();
        // The default authenticator accepts any user name and password.
        let server = libunftp::ServerBuilder::new(Box::new(move || {
            unftp_sbe_fs::Filesystem::new(root.clone()).expect("open the served folder")
        }))
        .passive_ports(0..=0) // any free port for each data connection
        .build()?;
        tokio::spawn(server.service(stream));
    }
}
