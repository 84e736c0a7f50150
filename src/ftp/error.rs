//! FTP failures: what went wrong (connection, timeout, refused login, TLS, a reply), classified
//! for the retry decisions the workers make, and the deadline every FTP exchange runs under.

use std::future::Future;
use std::time::Duration;

use suppaftp::Status;

pub(crate) use super::listing::ListingCap;

/// An FTP failure, classified for retry decisions.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum FtpError {
    #[error("cannot reach {server}: {detail}; check the host name and port")]
    Unreachable { server: String, detail: String },
    #[error("login refused for user {user:?} ({reply}); check the user name and password")]
    LoginRefused { user: String, reply: String },
    #[error("{operation}: no answer from the server within {secs} s")]
    Timeout { operation: String, secs: u64 },
    #[error("{operation}: server replied {text}")]
    Reply {
        operation: String,
        code: u32,
        text: String,
    },
    #[error("{operation}: connection lost ({detail})")]
    Connection { operation: String, detail: String },
    /// The control connection could not be secured: a certificate that fails verification, no
    /// TLS version in common, or AUTH TLS refused. Never worked around by going plain.
    #[error("TLS with {server} failed: {detail}")]
    Tls { server: String, detail: String },
    /// A folder listing went past one of its caps (see [`crate::ftp::ListingLimits`]): an
    /// endless or trickling listing, or one too large to hold. Never a truncated listing.
    #[error("listing of remote folder {folder:?} exceeded {cap}; the folder counts as not listed")]
    ListingTooLarge { folder: String, cap: ListingCap },
    /// A control-connection reply larger than suppaftp holds (256 KiB): abandoned half-read.
    #[error("{operation}: the server's reply exceeded 256 KiB")]
    ReplyTooLarge { operation: String },
    /// The size check after an upload: the temporary file's size is not the local file's.
    #[error(
        "{operation}: the server stored {stored} bytes of {expected} (size check after upload)"
    )]
    SizeMismatch {
        operation: String,
        stored: u64,
        expected: u64,
    },
    /// A reply that cannot be read where it came (out of step, or not FTP at all).
    #[error("{operation}: unreadable reply {reply:?}")]
    Garbled { operation: String, reply: String },
    /// vsftpd's `500 OOPS: ...`: the server's session process failed (seen under load, e.g.
    /// `vsf_sysutil_bind`) and closed the connection. A fresh connection usually works.
    #[error("{operation}: the server failed ({text}); trying again on a new connection")]
    ServerFault { operation: String, text: String },
    /// A download went past its cap (see [`crate::ftp::remote_file`]): abandoned half-read, so
    /// that a hostile or broken server cannot exhaust memory.
    #[error("{operation}: the file is larger than {cap} bytes, more than ftpsync reads")]
    TooLarge { operation: String, cap: u64 },
    /// A listing that describes the listed path itself, a file (see
    /// `Connection::not_itself`): a URL naming a file.
    #[error("remote {path:?} is a file, not a folder; check the URL")]
    NotAFolder { path: String },
    /// A listing that describes the listed folder itself (vsftpd's answer for a folder it may
    /// not read): the folder counts as not listed.
    #[error("the server cannot read remote folder {path:?} (its listing names only the folder itself); check its permissions")]
    Unreadable { path: String },
    /// An empty listing of a folder that is not there (vsftpd lists a missing folder as empty).
    #[error("remote folder {path:?} does not exist; check the URL")]
    NoSuchFolder { path: String },
    /// A download past the size its listing announced: abandoned half-read, so that a broken
    /// or hostile server cannot fill the local disk.
    #[error("{operation}: the server sent more than the {listed} bytes its listing announced; not put in place")]
    LongerThanListed { operation: String, listed: u64 },
}

impl FtpError {
    /// A reply that will not change on retry (5xx), or a refused login.
    pub(crate) fn is_permanent(&self) -> bool {
        match self {
            FtpError::Reply { code, .. } => (500..600).contains(code) || *code == 452,
            FtpError::LoginRefused { .. } | FtpError::Tls { .. } => true,
            FtpError::TooLarge { .. } => true,
            FtpError::NotAFolder { .. } | FtpError::Unreadable { .. } => true,
            FtpError::NoSuchFolder { .. } | FtpError::LongerThanListed { .. } => true,
            _ => false,
        }
    }

    /// A listing that went past a cap: trying again would only repeat it.
    pub(crate) fn is_listing_cap(&self) -> bool {
        matches!(self, FtpError::ListingTooLarge { .. })
    }

    /// Whether the connection can no longer be used after this error.
    pub(crate) fn breaks_connection(&self) -> bool {
        match self {
            FtpError::Reply { code, .. } => *code == 421,
            FtpError::Timeout { .. } | FtpError::Connection { .. } => true,
            FtpError::Unreachable { .. } | FtpError::LoginRefused { .. } => true,
            FtpError::Tls { .. } => true,
            // Abandoned half-read, or the server closed it.
            FtpError::ListingTooLarge { .. }
            | FtpError::ReplyTooLarge { .. }
            | FtpError::Garbled { .. }
            | FtpError::ServerFault { .. }
            | FtpError::TooLarge { .. }
            | FtpError::LongerThanListed { .. } => true,
            FtpError::SizeMismatch { .. } => false,
            FtpError::NotAFolder { .. } | FtpError::Unreadable { .. } => false,
            FtpError::NoSuchFolder { .. } => false,
        }
    }

    /// The server is out of space or over quota (452, 552): retrying will not help, and
    /// neither will other uploads.
    pub(crate) fn is_storage_full(&self) -> bool {
        matches!(self.code(), Some(452 | 552))
    }

    /// The server refused the connection because it has too many already (421, or a 530
    /// that says so): not a login problem, and not worth retrying soon.
    pub(crate) fn is_connection_limit(&self) -> bool {
        match self {
            FtpError::Reply { code: 421, .. } => true,
            FtpError::Reply {
                code: 530, text, ..
            }
            | FtpError::LoginRefused { reply: text, .. } => {
                let text = text.to_ascii_lowercase();
                ["too many", "maximum", "limit", "connections"]
                    .iter()
                    .any(|w| text.contains(w))
            }
            _ => false,
        }
    }

    /// The reply code, when the server gave one.
    pub(crate) fn code(&self) -> Option<u32> {
        match self {
            FtpError::Reply { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn from_suppa(operation: String, err: suppaftp::FtpError) -> FtpError {
        match err {
            suppaftp::FtpError::UnexpectedResponse(resp) => {
                let text = one_line(&String::from_utf8_lossy(&resp.body));
                let code = match resp.status {
                    Status::Unknown => text.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0),
                    s => s.code(),
                };
                if code == 500 && text.get(4..).is_some_and(|t| t.starts_with("OOPS")) {
                    return FtpError::ServerFault { operation, text };
                }
                FtpError::Reply {
                    operation,
                    code,
                    text,
                }
            }
            suppaftp::FtpError::ConnectionError(e)
                if e.get_ref()
                    .is_some_and(|inner| inner.is::<suppaftp::ReplyTooLarge>()) =>
            {
                FtpError::ReplyTooLarge { operation }
            }
            suppaftp::FtpError::BadResponse => FtpError::Garbled {
                operation,
                reply: "not an FTP reply".into(),
            },
            // A data connection's handshake: the server still expects it, so the control
            // connection is out of step; a fresh connection may do better.
            suppaftp::FtpError::SecureError(detail) => FtpError::Connection {
                operation,
                detail: format!(
                    "TLS on the data connection failed: {}",
                    secure_detail(&detail)
                ),
            },
            other => FtpError::Connection {
                operation,
                detail: other.to_string(),
            },
        }
    }
}

/// Server text made one line: a multi-line reply's lines joined with " / ". Reply text is
/// untrusted; an error built from it must not span lines (other control characters are left
/// to the output layer to escape).
pub(crate) fn one_line(text: &str) -> String {
    let breaks = [
        '\r', '\n', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}',
    ];
    let lines: Vec<&str> = text
        .split(breaks)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" / ")
}

/// suppaftp prefixes "Secure error: " each time it passes a TLS error on; what is left is the
/// message of [`crate::ftp::tls::Connector`].
pub(crate) fn secure_detail(detail: &str) -> &str {
    let mut detail = detail;
    while let Some(rest) = detail.strip_prefix("Secure error: ") {
        detail = rest;
    }
    detail
}

/// An upload failed on the local side or on the server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("cannot read local file: {0}")]
    Local(std::io::Error),
    #[error(transparent)]
    Remote(#[from] FtpError),
    /// The local file changed while it was sent; the upload was not put in place.
    #[error("the local file changed while it was uploaded")]
    Changed,
}

/// Runs one FTP exchange with a deadline, mapping errors to [`FtpError`].
pub(crate) async fn within<T, E, F>(
    timeout: Duration,
    operation: impl Into<String>,
    fut: F,
) -> Result<T, FtpError>
where
    F: Future<Output = Result<T, E>>,
    E: Into<SuppaOrOurs>,
{
    let operation = operation.into();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(match e.into() {
            SuppaOrOurs::Suppa(e) => FtpError::from_suppa(operation, e),
            SuppaOrOurs::Ours(e) => e,
        }),
        Err(_) => Err(FtpError::Timeout {
            operation,
            secs: timeout.as_secs(),
        }),
    }
}

/// Either error type a wrapped future may return.
pub(crate) enum SuppaOrOurs {
    Suppa(suppaftp::FtpError),
    Ours(FtpError),
}

impl From<suppaftp::FtpError> for SuppaOrOurs {
    fn from(e: suppaftp::FtpError) -> Self {
        SuppaOrOurs::Suppa(e)
    }
}

impl From<FtpError> for SuppaOrOurs {
    fn from(e: FtpError) -> Self {
        SuppaOrOurs::Ours(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_and_breaking_errors() {
        let reply = |code| FtpError::Reply {
            operation: "STOR x".into(),
            code,
            text: String::new(),
        };
        assert!(reply(550).is_permanent());
        assert!(!reply(450).is_permanent());
        assert!(reply(421).breaks_connection());
        assert!(!reply(550).breaks_connection());
        let tls = FtpError::Tls {
            server: "h:21".into(),
            detail: "x".into(),
        };
        assert!(tls.is_permanent() && tls.breaks_connection());
    }

    #[test]
    fn data_connection_tls_errors_lose_suppaftps_prefixes() {
        let nested = suppaftp::FtpError::SecureError("Secure error: the server closed".into());
        let err = FtpError::from_suppa("STOR x".into(), nested);
        assert_eq!(
            err.to_string(),
            "STOR x: connection lost (TLS on the data connection failed: the server closed)"
        );
        assert!(err.breaks_connection() && !err.is_permanent());
    }

    #[test]
    fn unknown_status_codes_are_read_from_the_reply_text() {
        let resp = suppaftp::types::Response::new(Status::Unknown, b"452 Disk full".to_vec());
        let err = FtpError::from_suppa(
            "STOR x".into(),
            suppaftp::FtpError::UnexpectedResponse(resp),
        );
        assert_eq!(err.code(), Some(452));
    }

    fn unexpected(status: Status, body: &[u8]) -> FtpError {
        let resp = suppaftp::types::Response::new(status, body.to_vec());
        FtpError::from_suppa("PASV".into(), suppaftp::FtpError::UnexpectedResponse(resp))
    }

    #[test]
    fn vsftpd_oops_is_a_server_fault_worth_a_fresh_connection() {
        let err = unexpected(Status::Unknown, b"500 OOPS: vsf_sysutil_bind\r\n");
        assert!(matches!(err, FtpError::ServerFault { .. }), "{err:?}");
        assert!(!err.is_permanent() && err.breaks_connection());
        let plain = unexpected(Status::Unknown, b"500 Unknown command\r\n");
        assert!(plain.is_permanent() && plain.code() == Some(500));
    }

    #[test]
    fn a_multi_line_reply_becomes_one_line() {
        let body = b"530-\x1b]0;title\x07 first\r\n530-second\n\r\n530 last\x0bpart\r\n";
        let err = unexpected(Status::NotLoggedIn, body);
        let text = err.to_string();
        assert_eq!(
            text,
            "PASV: server replied 530-\x1b]0;title\x07 first / 530-second / 530 last / part"
        );
        assert!(!text.contains(['\r', '\n']));
    }

    #[test]
    fn a_reply_too_large_and_a_size_mismatch_are_typed() {
        let huge = suppaftp::FtpError::from(suppaftp::ReplyTooLarge);
        let err = FtpError::from_suppa("STAT -a /d".into(), huge);
        assert!(matches!(err, FtpError::ReplyTooLarge { .. }), "{err:?}");
        assert!(err.breaks_connection());
        let mismatch = FtpError::SizeMismatch {
            operation: "STOR /d/a".into(),
            stored: 3,
            expected: 5,
        };
        assert_eq!(
            mismatch.to_string(),
            "STOR /d/a: the server stored 3 bytes of 5 (size check after upload)"
        );
        assert!(!mismatch.is_permanent() && !mismatch.breaks_connection());
    }
}
