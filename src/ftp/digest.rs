//! A remote file's hash computed by the server itself: `HASH` (draft-bryan-ftpext-hash, with
//! `OPTS HASH` to pick the algorithm) or the older `XSHA256`, `XSHA1`, `XMD5` and `XCRC`
//! (proftpd's mod_digest has all of them). What FEAT advertises decides which one is used; the
//! strongest algorithm first.

use std::collections::HashMap;

use suppaftp::Status;

use super::error::{within, FtpError};
use super::{op, Connection};

/// A hash algorithm a server may compute, in the order ftpsync prefers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Algorithm {
    Sha256,
    Sha1,
    Md5,
    Crc32,
}

impl Algorithm {
    const ALL: [Algorithm; 4] = [
        Algorithm::Sha256,
        Algorithm::Sha1,
        Algorithm::Md5,
        Algorithm::Crc32,
    ];

    /// The name `HASH` and `OPTS HASH` use.
    fn hash_name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Md5 => "MD5",
            Algorithm::Crc32 => "CRC32",
        }
    }

    /// The older command computing it (`XSHA256 path`).
    fn x_command(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "XSHA256",
            Algorithm::Sha1 => "XSHA1",
            Algorithm::Md5 => "XMD5",
            Algorithm::Crc32 => "XCRC",
        }
    }

    /// Length of the digest in bytes.
    pub(crate) fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
            Algorithm::Md5 => 16,
            Algorithm::Crc32 => 4,
        }
    }
}

/// How to ask this server for a file's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashCommand {
    /// `XSHA256 path` and its siblings.
    X(Algorithm),
    /// `HASH path`, after `OPTS HASH name` unless the algorithm is the server's default.
    Hash { algorithm: Algorithm, default: bool },
}

impl HashCommand {
    /// The algorithm the command computes.
    pub(crate) fn algorithm(self) -> Algorithm {
        match self {
            HashCommand::X(a) | HashCommand::Hash { algorithm: a, .. } => a,
        }
    }

    /// The best command the features advertised by FEAT offer, if any: the strongest
    /// algorithm, then `X...` before `HASH` (one command, no per-connection state).
    pub(crate) fn from_feat(feat: &HashMap<String, Option<String>>) -> Option<HashCommand> {
        let get = |key: &str| {
            feat.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_deref().unwrap_or(""))
        };
        // "HASH SHA-1*;SHA-256;MD5": the starred one is the default.
        let hash_list: Vec<(String, bool)> = get("HASH")
            .map(|list| {
                list.split(';')
                    .map(|name| {
                        let name = name.trim();
                        let default = name.ends_with('*');
                        (name.trim_end_matches('*').to_ascii_uppercase(), default)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Algorithm::ALL.into_iter().find_map(|algorithm| {
            if get(algorithm.x_command()).is_some() {
                return Some(HashCommand::X(algorithm));
            }
            hash_list
                .iter()
                .find(|(name, _)| name == algorithm.hash_name())
                .map(|&(_, default)| HashCommand::Hash { algorithm, default })
        })
    }
}

impl Connection {
    /// The server's hash of the remote file `path` with `how` (see [`HashCommand::from_feat`]).
    pub(crate) async fn remote_hash(
        &mut self,
        path: &str,
        how: HashCommand,
    ) -> Result<Vec<u8>, FtpError> {
        let algorithm = how.algorithm();
        let command = match how {
            HashCommand::X(a) => format!("{} {path}", a.x_command()),
            HashCommand::Hash { algorithm, default } => {
                if !default {
                    let opts = format!("OPTS HASH {}", algorithm.hash_name());
                    let send = self.stream.ftp.custom_command(&opts, &[Status::CommandOk]);
                    within(self.timeout, opts.clone(), send).await?;
                }
                format!("HASH {path}")
            }
        };
        let operation = op(command.split(' ').next().unwrap_or("HASH"), path);
        // 213 for HASH (and some X commands), 250 for proftpd's X commands.
        let accepted = [
            Status::File,
            Status::RequestedFileActionOk,
            Status::CommandOk,
        ];
        let send = self.stream.ftp.custom_command(&command, &accepted);
        let reply = within(self.timeout, operation.clone(), send).await?;
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        parse_reply(&text, algorithm).ok_or_else(|| FtpError::Garbled {
            operation,
            reply: super::error::one_line(&text),
        })
    }
}

/// The digest in a hash command's reply: the first word of the right length that is all hex,
/// on the reply's last line (`213 SHA-256 0-49 169c...dd path`, `250 169c...dd`; proftpd says
/// `250-Computing SHA256 digest` first).
fn parse_reply(text: &str, algorithm: Algorithm) -> Option<Vec<u8>> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let rest = line.get(4..).unwrap_or("");
    rest.split_whitespace()
        .find(|w| w.len() == algorithm.digest_len() * 2 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|hex| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex"))
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feat(lines: &[(&str, Option<&str>)]) -> HashMap<String, Option<String>> {
        lines
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn the_strongest_advertised_command_is_chosen() {
        let proftpd = feat(&[
            ("HASH", Some("SHA-1*;SHA-256;SHA-512;MD5;CRC32")),
            ("XSHA1", None),
            ("XSHA256", None),
            ("XMD5", None),
            ("XCRC", None),
        ]);
        assert_eq!(
            HashCommand::from_feat(&proftpd),
            Some(HashCommand::X(Algorithm::Sha256))
        );
        let hash_only = feat(&[("HASH", Some("SHA-1*;SHA-256"))]);
        assert_eq!(
            HashCommand::from_feat(&hash_only),
            Some(HashCommand::Hash {
                algorithm: Algorithm::Sha256,
                default: false
            })
        );
        let md5 = feat(&[("HASH", Some("MD5*;SHA-512")), ("XCRC", None)]);
        assert_eq!(
            HashCommand::from_feat(&md5),
            Some(HashCommand::Hash {
                algorithm: Algorithm::Md5,
                default: true
            })
        );
        assert_eq!(HashCommand::from_feat(&feat(&[("MLST", None)])), None);
        assert_eq!(
            HashCommand::from_feat(&feat(&[("HASH", Some("SHA-512*"))])),
            None
        );
    }

    #[test]
    fn digests_are_read_from_both_reply_forms() {
        let hex = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";
        let hash = format!("213 SHA-256 0-49 {hex} some file.txt\r\n");
        let got = parse_reply(&hash, Algorithm::Sha256).expect("a digest");
        assert_eq!(got.len(), 32);
        assert_eq!(got[0], 0x01);
        assert_eq!(got[16], 0x01);
        let x = format!("250 {hex}\r\n");
        assert_eq!(parse_reply(&x, Algorithm::Sha256), Some(got));
        assert_eq!(
            parse_reply("250 1f2e3d4c\r\n", Algorithm::Crc32),
            Some(vec![0x1f, 0x2e, 0x3d, 0x4c])
        );
        assert_eq!(parse_reply("213 nothing here", Algorithm::Md5), None);
        let proftpd = format!("250-Computing SHA256 digest\r\n250 {hex}\r\n");
        assert_eq!(
            parse_reply(&proftpd, Algorithm::Sha256).map(|d| d.len()),
            Some(32)
        );
    }
}
