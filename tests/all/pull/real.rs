//! Pulls from the real servers (vsftpd: LIST only; pure-ftpd: MLSD; vsftpd over FTPS): the
//! tree a push put there comes back byte for byte (RETR pipelined with its PASV, folders listed
//! in batches), and a rerun downloads nothing.

use super::{pull, write_awkward_tree, writes_in};
use crate::support::faults::FaultProxy;
use crate::support::{self, assert_mirror, host_port, real_servers, snapshot, sync, Tree};

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn real_servers_pull_back_what_was_pushed_then_a_rerun_downloads_nothing() {
    for server in real_servers() {
        let (url, dir) = server.scratch("pull_back");
        let source = Tree::new();
        let files = write_awkward_tree(source.path());
        assert_eq!(sync(source.path(), &url, &[]).code, 0, "{}", server.name);
        // Through the proxy, so that the command log shows what the pull sent.
        let proxy = FaultProxy::start(&host_port(&server.url), vec![]);
        let local = Tree::new();
        let run = pull(&proxy.url(&url), local.path(), &["-j", "4", "--delete"]);
        assert_eq!(run.code, 0, "{}: {run}", server.name);
        assert_eq!(
            run.summary["files_downloaded"], files,
            "{}: {run}",
            server.name
        );
        assert_mirror(local.path(), &dir);
        assert_eq!(
            writes_in(&proxy.commands()),
            Vec::<String>::new(),
            "{}",
            server.name
        );
        // Each RETR went in one write with its PASV; a LIST-only server's folders were listed in
        // batches of STATs (an MLSD server's too, once its STAT listings proved the same).
        let followed = proxy.followed_commands();
        let retr = proxy
            .commands()
            .iter()
            .filter(|c| c.starts_with("RETR "))
            .count();
        let pasv_with_retr = followed.iter().filter(|c| *c == "PASV").count();
        assert!(pasv_with_retr >= retr, "{}: {followed:?}", server.name);
        let stat_batches = followed.iter().filter(|c| c.starts_with("STAT ")).count();
        if server.name == "vsftpd" {
            assert!(stat_batches >= 1, "{}: {followed:?}", server.name);
        }

        let before = snapshot(local.path());
        let rerun = pull(&url, local.path(), &["-j", "4"]);
        assert_eq!(rerun.code, 0, "{}: {rerun}", server.name);
        assert_eq!(
            rerun.summary["files_downloaded"], 0,
            "{}: {rerun}",
            server.name
        );
        let changed = support::changed_files(&before, &snapshot(local.path()));
        assert_eq!(changed, Vec::<String>::new(), "{}", server.name);
    }
}

#[test]
#[ignore = "needs the real FTP servers: bash scripts/test-servers.sh start, then --include-ignored"]
fn a_pull_over_ftps_mirrors_the_folder() {
    let (Ok(url), Ok(root), Ok(ca)) = (
        std::env::var("FTPSYNC_TEST_VSFTPD_TLS_URL"),
        std::env::var("FTPSYNC_TEST_VSFTPD_TLS_ROOT"),
        std::env::var("FTPSYNC_TEST_TLS_CA"),
    ) else {
        let required = std::env::var("FTPSYNC_REQUIRE_REAL_SERVERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FTPSYNC_TEST_VSFTPD_TLS_URL, _ROOT and FTPSYNC_TEST_TLS_CA"
        );
        return;
    };
    let dir = std::path::Path::new(&root).join("pull_tls");
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("{}/pull_tls", url.trim_end_matches('/'));
    let source = Tree::new();
    write_awkward_tree(source.path());
    assert_eq!(sync(source.path(), &url, &["--ca-file", &ca]).code, 0);
    let local = Tree::new();
    let run = pull(&url, local.path(), &["--ca-file", &ca, "-j", "3"]);
    assert_eq!(run.code, 0, "{run}");
    assert_mirror(local.path(), &dir);
}
