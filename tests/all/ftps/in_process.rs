//! FTPS against the in-process servers, whose certificate comes from a throw-away CA made here:
//! both modes with 8 workers, `--tls` on an `ftp://` URL, the refusals (untrusted certificate,
//! no TLS on the server, a TLS version the server lacks), `--insecure`, and proof that the
//! password never crosses the wire in clear text.

use libunftp::options::TlsFlags;

use crate::support::{assert_mirror, changed_files, snapshot, sync, FtpServer};

use super::pki::Pki;
use super::servers::{FtpsServer, Recorder, DEFAULT_FLAGS};
use super::{site_tree, Mode};

/// The warning `--insecure` prints on every run.
const INSECURE_WARNING: &str =
    "ftpsync: warning: TLS certificate verification is disabled (--insecure)";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn explicit_and_implicit_tls_mirror_a_tree_with_8_workers() {
    let pki = Pki::new();
    for mode in [Mode::Explicit, Mode::Implicit] {
        let server = FtpsServer::start(&pki, mode);
        let tree = site_tree(60);
        let ca = pki.path("ca.pem");
        let args = ["-j", "8", "--ca-file", &ca];
        let run = sync(tree.path(), &server.url("site"), &args);
        assert_eq!(run.code, 0, "{mode:?}: {run}");
        assert_eq!(run.summary["files_uploaded"], 62, "{mode:?}: {run}");
        assert_mirror(tree.path(), &server.remote_dir("site"));
        assert!(
            server.connections() >= 8,
            "{mode:?}: 8 workers, 8 connections"
        );

        let before = snapshot(&server.remote_dir("site"));
        let rerun = sync(tree.path(), &server.url("site"), &args);
        assert_eq!(rerun.code, 0, "{mode:?}: {rerun}");
        assert_eq!(rerun.summary["files_uploaded"], 0, "{mode:?}: {rerun}");
        let after = snapshot(&server.remote_dir("site"));
        assert_eq!(changed_files(&before, &after), Vec::<String>::new());
    }
}

#[test]
fn the_tls_option_secures_an_ftp_url() {
    let pki = Pki::new();
    for (mode, option) in [(Mode::Explicit, "explicit"), (Mode::Implicit, "implicit")] {
        let server = FtpsServer::start(&pki, mode);
        let tree = site_tree(5);
        let url = format!("ftp://test:secret@127.0.0.1:{}/site", server.port());
        let ca = pki.path("ca.pem");
        let run = sync(tree.path(), &url, &["--tls", option, "--ca-file", &ca]);
        assert_eq!(run.code, 0, "--tls {option}: {run}");
        assert_mirror(tree.path(), &server.remote_dir("site"));
    }
}

#[test]
fn an_untrusted_certificate_fails_with_exit_2_naming_the_host_the_reason_and_both_options() {
    let pki = Pki::new();
    let server = FtpsServer::start(&pki, Mode::Explicit);
    let tree = site_tree(3);
    let other_ca = pki.path("other-ca.pem");
    // The system's trust store alone, then a CA that did not sign the certificate.
    for extra in [&[][..], &["--ca-file", &other_ca]] {
        let run = sync(tree.path(), &server.url("site"), extra);
        assert_eq!(run.code, 2, "{extra:?}: {run}");
        let message = run.stderr.trim();
        assert_eq!(message.lines().count(), 1, "one line: {run}");
        for part in [
            "127.0.0.1",
            "certificate cannot be trusted",
            "not signed by an authority",
            "--ca-file",
            "--insecure",
        ] {
            assert!(message.contains(part), "{part:?} missing: {message}");
        }
        assert!(!message.contains("secret"), "{message}");
        assert!(!server.remote_dir("site").exists(), "nothing may be done");
    }
}

#[test]
fn a_self_signed_server_certificate_in_ca_file_is_trusted() {
    let pki = Pki::new();
    let server = FtpsServer::start_with(&pki, Mode::Explicit, DEFAULT_FLAGS, "self-signed");
    let tree = site_tree(5);
    let run = sync(tree.path(), &server.url("site"), &[]);
    assert_eq!(run.code, 2, "not without --ca-file: {run}");
    let pinned = pki.path("self-signed.pem");
    let run = sync(tree.path(), &server.url("site"), &["--ca-file", &pinned]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir("site"));
}

#[test]
fn insecure_skips_verification_and_says_so_on_every_run() {
    let pki = Pki::new();
    for mode in [Mode::Explicit, Mode::Implicit] {
        let server = FtpsServer::start(&pki, mode);
        let tree = site_tree(5);
        for extra in [&["--insecure"][..], &["--insecure", "-q"]] {
            let run = sync(tree.path(), &server.url("site"), extra);
            assert_eq!(run.code, 0, "{mode:?} {extra:?}: {run}");
            assert!(run.stderr.contains(INSECURE_WARNING), "{run}");
        }
        assert_mirror(tree.path(), &server.remote_dir("site"));
    }
}

#[test]
fn a_tls_version_the_server_lacks_fails_with_exit_2_and_says_what_to_try() {
    let pki = Pki::new();
    let flags = TlsFlags::V1_3 | TlsFlags::RESUMPTION_TICKETS;
    let server = FtpsServer::start_with(&pki, Mode::Explicit, flags, "server");
    let tree = site_tree(5);
    let ca = pki.path("ca.pem");
    let run = sync(
        tree.path(),
        &server.url("site"),
        &["--ca-file", &ca, "--tls-version", "1.2"],
    );
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("--tls-version"), "{run}");
    assert!(run.stderr.contains("127.0.0.1"), "{run}");
    for extra in [&[][..], &["--tls-version", "1.3"]] {
        let args = [&["--ca-file", ca.as_str(), "-j", "8"][..], extra].concat();
        let run = sync(tree.path(), &server.url("site"), &args);
        assert_eq!(run.code, 0, "{extra:?}: {run}");
        assert_mirror(tree.path(), &server.remote_dir("site"));
    }
}

#[test]
fn a_server_without_tls_is_refused_with_exit_2_before_the_password_is_sent() {
    let server = FtpServer::start();
    let recorder = Recorder::start(server.port);
    let tree = site_tree(3);
    let url = format!(
        "ftpes://test:pw-canary-7f3a@127.0.0.1:{}/site",
        recorder.port()
    );
    let run = sync(tree.path(), &url, &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("refused AUTH TLS"), "{run}");
    let sent = recorder.sent();
    assert!(
        contains(&sent, "AUTH TLS\r\n"),
        "{}",
        String::from_utf8_lossy(&sent)
    );
    assert!(!contains(&sent, "pw-canary-7f3a"), "the password went out");
    assert!(
        !contains(&sent, "USER"),
        "nothing after the refused AUTH TLS"
    );
    assert!(!server.remote_dir("site").exists());
}

#[test]
fn the_password_never_crosses_the_wire_in_clear_text_on_ftpes() {
    const PASSWORD: &str = "pw-canary-7f3a";
    let pki = Pki::new();
    let server = FtpsServer::start(&pki, Mode::Explicit);
    let recorder = Recorder::start(server.port());
    let tree = site_tree(10);
    let url = format!("ftpes://test:{PASSWORD}@127.0.0.1:{}/site", recorder.port());
    let ca = pki.path("ca.pem");
    let run = sync(tree.path(), &url, &["-j", "4", "--ca-file", &ca]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(tree.path(), &server.remote_dir("site"));
    let sent = recorder.sent();
    assert!(sent.starts_with(b"AUTH TLS\r\n"), "AUTH TLS comes first");
    // Four connections, each with nothing readable after its AUTH TLS.
    let clear = String::from_utf8_lossy(&sent)
        .matches("AUTH TLS\r\n")
        .count();
    assert_eq!(clear, 4, "one AUTH TLS per connection");
    for needle in [PASSWORD, "PASS", "USER"] {
        assert!(
            !contains(&sent, needle),
            "{needle:?} crossed the wire in clear text"
        );
    }

    // Control: the same capture over plain FTP does see the password, so the check above would
    // have caught it.
    let plain = FtpServer::start();
    let recorder = Recorder::start(plain.port);
    let url = format!("ftp://test:{PASSWORD}@127.0.0.1:{}/site", recorder.port());
    assert_eq!(sync(tree.path(), &url, &[]).code, 0);
    assert!(contains(&recorder.sent(), &format!("PASS {PASSWORD}\r\n")));
}
