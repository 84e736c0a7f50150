//! Logging in, and what a session needs to know before its first command: binary mode, the
//! server's features (FEAT), UTF-8 names and the login folder (PWD). Those four go in one write,
//! their replies read in order: one round trip instead of four on every connection.

use std::collections::HashMap;

use suppaftp::Status;

use super::digest::HashCommand;
use super::error::{within, FtpError};
use super::pipeline::reply;
use super::{Connection, Features, Login};

/// What follows the login, in one write. `OPTS UTF8 ON` goes whether or not FEAT will list
/// UTF8: a server without it refuses the command, which changes nothing.
const SETTLE_IN: &str = "TYPE I\r\nFEAT\r\nOPTS UTF8 ON\r\nPWD\r\n";

impl Connection {
    pub(super) async fn log_in(&mut self, login: &Login) -> Result<(), FtpError> {
        // With TLS, the stream is encrypted by now (see `secure`): the password never travels
        // in clear text.
        let (user, password) = (login.user.as_str(), login.password.as_str());
        match within(self.timeout, "login", self.stream.ftp.login(user, password)).await {
            Ok(()) => {}
            Err(e) if e.is_connection_limit() => return Err(e),
            Err(FtpError::Reply { code, text, .. }) if code == 530 || code == 430 => {
                return Err(FtpError::LoginRefused {
                    user: user.to_string(),
                    reply: text,
                });
            }
            Err(e) => return Err(e),
        }
        let timeout = self.timeout;
        self.stream.send(SETTLE_IN, timeout).await?;
        let binary = reply(&mut self.stream, "TYPE I", &[Status::CommandOk], timeout).await;
        // FEAT is optional in RFC 959 servers: no answer simply means no extensions. Expecting
        // 211 would end the read after the reply's first line (suppaftp's own FEAT reads the
        // rest itself); expecting nothing reads it whole, handed back as "unexpected".
        let read = self.stream.ftp.read_response_in(&[]);
        let feat = match tokio::time::timeout(timeout, read).await {
            Err(_) => Err(FtpError::Timeout {
                operation: "FEAT".into(),
                secs: timeout.as_secs(),
            }),
            Ok(Err(suppaftp::FtpError::UnexpectedResponse(r))) if r.status == Status::System => {
                Ok(r)
            }
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(FtpError::from_suppa("FEAT".into(), e)),
        };
        let utf8 = reply(
            &mut self.stream,
            "OPTS UTF8 ON",
            &[Status::CommandOk],
            timeout,
        )
        .await;
        let pwd = reply(&mut self.stream, "PWD", &[Status::PathCreated], timeout).await;
        binary?;
        for answer in [feat.as_ref().err(), utf8.as_ref().err(), pwd.as_ref().err()] {
            if let Some(e) = answer.filter(|e| e.breaks_connection()) {
                return Err(e.clone());
            }
        }
        if let Ok(feat) = feat {
            self.features = features(&String::from_utf8_lossy(&feat.body));
        }
        self.login_folder = pwd.ok().and_then(|text| quoted_path(&text));
        Ok(())
    }
}

/// The features a FEAT reply lists (one per line, each line starting with a space: the name,
/// then what it takes, e.g. ` HASH SHA-1*;SHA-256`).
fn features(reply: &str) -> Features {
    let listed: HashMap<String, Option<String>> = reply
        .lines()
        .filter(|line| line.starts_with(' '))
        .filter_map(|line| {
            let line = line.trim();
            let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
            let rest = rest.trim();
            (!name.is_empty()).then(|| {
                let value = (!rest.is_empty()).then(|| rest.to_string());
                (name.to_ascii_uppercase(), value)
            })
        })
        .collect();
    let has = |name: &str| listed.contains_key(name);
    Features {
        mlsd: has("MLST"),
        mfmt: has("MFMT"),
        size: has("SIZE"),
        hash: HashCommand::from_feat(&listed),
    }
}

/// The folder in a `257 "path" ...` reply (`""` stands for one `"` inside it).
fn quoted_path(reply: &str) -> Option<String> {
    let (_, rest) = reply.split_once('"')?;
    let mut path = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if chars.peek() == Some(&'"') => {
                chars.next();
                path.push('"');
            }
            '"' => return Some(path),
            c => path.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feat_lines_name_the_features_in_any_case() {
        let reply = "211-Features:\n MLST type*;size*;modify*;\n mfmt\n SIZE\n UTF8\n211 End\n";
        let found = features(reply);
        assert!(found.mlsd && found.mfmt && found.size);
        assert_eq!(found.hash, None);
        let none = features("211-Features:\n EPSV\n211 End\n");
        assert!(!none.mlsd && !none.mfmt && !none.size);
        let hashed = features("211-Features:\n HASH SHA-1*;SHA-256;MD5\n XSHA256\n211 End\n");
        assert!(hashed.hash.is_some(), "{hashed:?}");
    }

    #[test]
    fn the_login_folder_is_read_from_its_quotes() {
        assert_eq!(
            quoted_path("257 \"/home/www\" is the current directory").as_deref(),
            Some("/home/www")
        );
        assert_eq!(
            quoted_path("257 \"/a \"\"b\"\"\" here").as_deref(),
            Some("/a \"b\"")
        );
        assert_eq!(quoted_path("257 no quotes"), None);
        assert_eq!(quoted_path("257 \"/unterminated"), None);
    }
}
