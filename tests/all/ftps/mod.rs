//! FTPS: explicit (`ftpes://`) and implicit (`ftps://`) TLS against an in-process libunftp server
//! whose certificate comes from a throw-away CA made here; the refusals (untrusted certificate,
//! no TLS on the server, a TLS version the server lacks); proof that the password never crosses
//! the wire in clear text; and the real servers started by `scripts/test-servers.sh` (vsftpd and
//! proftpd, both refusing data connections that do not resume the control connection's TLS
//! session), in both modes and both TLS versions.
//!
//! The parts: `pki.rs` (the CA) and `servers.rs` (the in-process servers) serve
//! `in_process.rs`; `real.rs` needs the real servers.

mod in_process;
mod pki;
mod real;
mod servers;

use crate::support::Tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// AUTH TLS on the control port (`ftpes://`).
    Explicit,
    /// TLS from the first byte (`ftps://`).
    Implicit,
}

/// Files of assorted sizes in a few folders, one larger than a TLS record many times over.
fn site_tree(files: usize) -> Tree {
    let tree = Tree::new();
    for i in 0..files {
        let bytes: Vec<u8> = (0..i * 97 % 20_000).map(|b| (b * 31 + i) as u8).collect();
        tree.write(&format!("dir{}/file{i}.bin", i % 10), bytes);
    }
    tree.write("empty.txt", b"");
    tree.write("big/large.bin", vec![0xa5u8; 3 * 1024 * 1024 + 7]);
    tree
}
