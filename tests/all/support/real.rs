//! [`real_servers`]: the real FTP servers (vsftpd, pure-ftpd) named by `FTPSYNC_TEST_*`
//! environment variables, each with a [`RealServer::scratch`] folder per test.

use std::fs;
use std::path::PathBuf;
use std::sync::Once;

/// A real FTP server set up for the tests (see [`real_servers`]).
#[derive(Debug, Clone)]
pub struct RealServer {
    /// `"vsftpd"` or `"pure-ftpd"`.
    pub name: &'static str,
    /// URL of the login folder, with credentials, ending with `/`.
    pub url: String,
    /// The folder on this machine that the login folder is.
    pub root: PathBuf,
}

impl RealServer {
    /// A folder for one test on this server, so that parallel tests don't collide: removes
    /// `root/test_name` if it exists (left over from an earlier run) and returns its URL and
    /// local path. The folder is not created: ftpsync must create missing remote folders.
    pub fn scratch(&self, test_name: &str) -> (String, PathBuf) {
        let dir = self.root.join(test_name);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&dir),
            Ok(_) => fs::remove_file(&dir),
            Err(_) => Ok(()),
        }
        .unwrap_or_else(|err| {
            panic!(
                "{}: remove old scratch folder {}: {err}",
                self.name,
                dir.display()
            )
        });
        let base = self.url.trim_end_matches('/');
        (format!("{base}/{test_name}"), dir)
    }
}

const REAL_SERVER_VARS: [(&str, &str, &str); 2] = [
    (
        "vsftpd",
        "FTPSYNC_TEST_VSFTPD_URL",
        "FTPSYNC_TEST_VSFTPD_ROOT",
    ),
    (
        "pure-ftpd",
        "FTPSYNC_TEST_PUREFTPD_URL",
        "FTPSYNC_TEST_PUREFTPD_ROOT",
    ),
];

/// `host:port` of an `ftp://user:pw@host:port/path` URL, for a [`super::faults::FaultProxy`]
/// in front.
pub fn host_port(url: &str) -> String {
    let after_login = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    let authority = after_login
        .split_once("://")
        .map_or(after_login, |(_, a)| a);
    authority.split('/').next().unwrap_or_default().to_string()
}

/// The real FTP servers named by `FTPSYNC_TEST_{VSFTPD,PUREFTPD}_{URL,ROOT}`.
///
/// A server whose two variables are not both set is left out, with a notice on stderr; with
/// `FTPSYNC_REQUIRE_REAL_SERVERS=1` a missing one is a panic instead.
pub fn real_servers() -> Vec<RealServer> {
    let required = std::env::var("FTPSYNC_REQUIRE_REAL_SERVERS").is_ok_and(|v| v == "1");
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (name, url_var, root_var) in REAL_SERVER_VARS {
        let url = std::env::var(url_var).ok().filter(|v| !v.is_empty());
        let root = std::env::var_os(root_var).filter(|v| !v.is_empty());
        match (url, root) {
            (Some(url), Some(root)) => {
                let url = if url.ends_with('/') {
                    url
                } else {
                    format!("{url}/")
                };
                found.push(RealServer {
                    name,
                    url,
                    root: PathBuf::from(root),
                });
            }
            _ => missing.push(format!("{name} ({url_var} and {root_var})")),
        }
    }
    if !missing.is_empty() {
        if required {
            panic!(
                "FTPSYNC_REQUIRE_REAL_SERVERS=1 but these real FTP servers are not configured: {}",
                missing.join(", ")
            );
        }
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            eprintln!(
                "notice: real-server tests skipped for {} (set the variables, or \
                 FTPSYNC_REQUIRE_REAL_SERVERS=1 to make this an error)",
                missing.join(", ")
            );
        });
    }
    found
}
