//! Tests of the shared test support (`tests/all/support`) itself, without ftpsync: the in-process
//! FTP server, its login check, and the tree comparisons.

use std::io::{BufRead, BufReader};
use std::panic::{catch_unwind, AssertUnwindSafe};

use suppaftp::tokio::AsyncFtpStream;
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};
use tokio::io::AsyncWriteExt;

use crate::support::{
    self, assert_mirror, assert_mirror_except, changed_files, snapshot, tree_digest, FtpServer,
    Node, Tree,
};

/// Uploads `bytes` to `path` over a new logged-in connection.
async fn upload(
    addr: String,
    user: &str,
    password: &str,
    path: &str,
    bytes: &[u8],
) -> Result<(), FtpError> {
    let mut ftp = AsyncFtpStream::connect(addr).await?;
    ftp.login(user, password).await?;
    ftp.transfer_type(FileType::Binary).await?;
    let mut stream = ftp.put_with_stream(path).await?;
    stream
        .write_all(bytes)
        .await
        .map_err(FtpError::ConnectionError)?;
    stream.finish().await?;
    ftp.quit().await
}

/// The message of a panic caught by `catch_unwind`.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn server_accepts_a_login_and_stores_a_file() {
    let server = FtpServer::start();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    upload(server.addr(), "anyone", "anything", "upload.bin", &bytes)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(server.remote_dir("upload.bin")).unwrap(),
        bytes
    );
    assert_eq!(
        server.connections(),
        1,
        "the readiness probe is not counted"
    );
    assert_eq!(
        server.url("site/x"),
        format!("ftp://test:secret@127.0.0.1:{}/site/x", server.port)
    );
    assert_eq!(server.remote_dir("site"), server.root.path().join("site"));
}

#[test]
fn server_starts_from_a_plain_test_and_stops_on_drop() {
    let server = FtpServer::start();
    let addr = server.addr();
    let stream = std::net::TcpStream::connect(&addr).unwrap();
    let mut greeting = String::new();
    BufReader::new(&stream).read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("220"), "{greeting:?}");
    drop(stream);
    let root = server.root.path().to_path_buf();
    drop(server);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "port still open after drop"
    );
    assert!(!root.exists(), "root folder left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_run_in_parallel_with_parallel_transfers() {
    let servers: Vec<FtpServer> = (0..3).map(|_| FtpServer::start()).collect();
    let mut uploads = tokio::task::JoinSet::new();
    for server in &servers {
        for i in 0..4 {
            let addr = server.addr();
            uploads.spawn(async move {
                upload(addr, "test", "secret", &format!("f{i}"), b"data").await
            });
        }
    }
    while let Some(result) = uploads.join_next().await {
        result.unwrap().unwrap();
    }
    for server in &servers {
        assert_eq!(server.connections(), 4);
        assert!((1..=4).contains(&server.peak_connections()));
        for i in 0..4 {
            assert_eq!(
                std::fs::read(server.remote_dir(&format!("f{i}"))).unwrap(),
                b"data"
            );
        }
    }
}

#[tokio::test]
async fn auth_server_refuses_a_wrong_password_or_user() {
    let server = FtpServer::start_with_auth("test", "secret");
    for (user, password) in [("test", "wrong"), ("other", "secret"), ("test", "")] {
        let mut ftp = AsyncFtpStream::connect(server.addr()).await.unwrap();
        match ftp.login(user, password).await {
            Err(FtpError::UnexpectedResponse(response)) => {
                assert_eq!(response.status, Status::NotLoggedIn, "{user}/{password}")
            }
            other => panic!("login {user}/{password} should fail with 530, got {other:?}"),
        }
        // Not logged in: the server refuses to store anything.
        assert!(ftp.put_with_stream("sneaky").await.is_err());
    }
    assert!(!server.remote_dir("sneaky").exists());

    upload(server.addr(), "test", "secret", "ok.txt", b"fine")
        .await
        .unwrap();
    assert_eq!(std::fs::read(server.remote_dir("ok.txt")).unwrap(), b"fine");
    assert_eq!(
        server.url(""),
        format!("ftp://test:secret@127.0.0.1:{}/", server.port)
    );
}

#[test]
fn assert_mirror_accepts_identical_trees_and_reports_differences() {
    let local = Tree::new();
    let remote = Tree::new();
    for tree in [&local, &remote] {
        tree.write("a.txt", "abc");
        tree.write("sub/deep/b.bin", [0u8, 1, 2, 255]);
        tree.mkdir("empty");
    }
    assert_mirror(local.path(), remote.path());

    remote.write("a.txt", "abd");
    remote.write("extra", "x");
    local.write("missing", "y");
    local.remove("empty");
    local.write("empty", "now a file");
    let message =
        panic_message(catch_unwind(|| assert_mirror(local.path(), remote.path())).unwrap_err());
    for line in [
        "differs: a.txt (local 3 bytes, remote 3 bytes)",
        "only remote: extra",
        "only local: missing",
        "kind: empty (local file, remote dir)",
    ] {
        assert!(message.contains(line), "{line:?} not in:\n{message}");
    }
    assert!(!message.contains("sub/deep/b.bin"), "{message}");

    assert_mirror_except(
        local.path(),
        remote.path(),
        &["a.txt", "extra", "missing", "empty/"],
    );
    let missing_remote = remote.path().join("nope");
    let result = catch_unwind(AssertUnwindSafe(|| {
        assert_mirror(local.path(), &missing_remote)
    }));
    assert!(panic_message(result.unwrap_err()).contains("only local: a.txt"));
}

#[test]
fn snapshot_sees_any_rewrite_and_digest_sees_content() {
    let tree = Tree::new();
    tree.write("same", "1");
    tree.write("rewritten", "2");
    tree.write("replaced", "3");
    tree.write("gone", "4");
    tree.set_mtime("rewritten", 1_000_000_000);
    let digest = tree_digest(tree.path());
    let before = snapshot(tree.path());
    assert_eq!(before.len(), 4);

    // Same bytes and mtime put back: only the ctime tells.
    tree.write("rewritten", "2");
    tree.set_mtime("rewritten", 1_000_000_000);
    std::fs::write(tree.join("tmp"), "3").unwrap();
    std::fs::rename(tree.join("tmp"), tree.join("replaced")).unwrap();
    tree.remove("gone");
    tree.write("new", "5");
    tree.mkdir("dir");

    let after = snapshot(tree.path());
    assert_eq!(
        changed_files(&before, &after),
        ["gone", "new", "replaced", "rewritten"]
    );
    assert!(changed_files(&after, &snapshot(tree.path())).is_empty());
    assert_eq!(support::mtime(&tree.join("rewritten")), 1_000_000_000);

    let now = tree_digest(tree.path());
    assert_ne!(now, digest);
    assert_eq!(now.get("dir"), Some(&Node::Dir));
    assert_eq!(now.get("same"), Some(&Node::File(b"1".to_vec())));
}

#[test]
fn ftpsync_command_environment_is_isolated() {
    let mut cmd = std::process::Command::new("env");
    support::isolate_env(&mut cmd);
    let envs: Vec<(String, Option<String>)> = cmd
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map(|v| v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    let get = |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let home = support::fake_home().to_string_lossy().into_owned();
    let state = support::state_home().to_string_lossy().into_owned();
    assert_eq!(get("HOME"), Some(Some(home)));
    assert_eq!(get("XDG_STATE_HOME"), Some(Some(state)));
    assert_eq!(get("NO_COLOR"), Some(Some("1".to_string())));
    assert_eq!(get("NETRC"), Some(None));
    assert_eq!(get("FTPSYNC_PASSWORD"), Some(None));
    assert!(support::state_home().is_dir() && support::fake_home().is_dir());
    // And ftpsync() itself builds (the binary may still be a stub, so it is not run here).
    let _ = support::ftpsync();
}

#[test]
fn run_collects_exit_code_output_and_json_summary() {
    let mut cmd = assert_cmd::Command::new("sh");
    cmd.args([
        "-c",
        "echo '> a.txt' >&2; echo 'not json'; echo '{\"files_uploaded\":2}'; exit 3",
    ]);
    let run = support::run(&mut cmd);
    assert_eq!(run.code, 3);
    assert_eq!(run.summary["files_uploaded"], 2, "{run}");
    assert!(run.stderr.contains("> a.txt"));
    assert!(run.to_string().contains("exited with 3"), "{run}");

    let mut cmd = assert_cmd::Command::new("true");
    assert!(support::run(&mut cmd).summary.is_null());
}

/// Logs in with `server.url` and stores a file in the scratch folder `test_name`: it must land
/// in the local folder that `scratch` returned, which a second `scratch` call removes.
async fn check_scratch(server: &support::RealServer, test_name: &str) {
    let (url, dir) = server.scratch(test_name);
    assert!(url.ends_with(&format!("/{test_name}")), "{url}");
    let url = url::Url::parse(&url).unwrap();
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(21));
    let mut ftp = AsyncFtpStream::connect(addr).await.unwrap();
    ftp.login(decode(url.username()), decode(url.password().unwrap_or("")))
        .await
        .unwrap_or_else(|err| panic!("{}: login with {url}: {err}", server.name));
    ftp.transfer_type(FileType::Binary).await.unwrap();
    let mut remote = String::new();
    for segment in url.path_segments().unwrap().filter(|s| !s.is_empty()) {
        remote.push_str(&decode(segment));
        let _ = ftp.mkdir(&remote).await; // may exist already
        remote.push('/');
    }
    let mut stream = ftp
        .put_with_stream(format!("{remote}probe.txt"))
        .await
        .unwrap();
    stream.write_all(b"probe").await.unwrap();
    stream.finish().await.unwrap();
    ftp.quit().await.unwrap();
    assert_eq!(
        std::fs::read(dir.join("probe.txt")).unwrap_or_else(|err| panic!(
            "{}: the upload is not in {} ({err}): does the ROOT variable match the URL?",
            server.name,
            dir.display()
        )),
        b"probe"
    );
    let (_, again) = server.scratch(test_name);
    assert!(
        !again.exists(),
        "{}: scratch did not remove {}",
        server.name,
        again.display()
    );
}

#[tokio::test]
async fn scratch_folders_work_on_the_in_process_server() {
    let server = FtpServer::start();
    let as_real = support::RealServer {
        name: "in-process",
        url: server.url(""),
        root: server.root.path().to_path_buf(),
    };
    check_scratch(&as_real, "scratch_selftest").await;
}

/// With real servers configured (CI), checks that each URL and ROOT pair match.
#[tokio::test]
async fn real_servers_urls_match_their_roots() {
    for server in support::real_servers() {
        check_scratch(&server, "support_selftest_scratch").await;
    }
}
