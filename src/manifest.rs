//! The `--checksum` manifest: what ftpsync last put on the server, kept on the server itself
//! (a CI runner starts with no local state). Per file: the local size and BLAKE3 hash of the
//! content uploaded, and the size and time the server listed for it, so that a file changed on
//! the server since is noticed. Also the format version and the excludes in force.
//!
//! This module owns the format and its rules: parsing (anything unexpected is an error, never
//! an empty manifest: a corrupt manifest must not pass for a first deploy), writing, and when
//! a listing still shows what the manifest recorded. Reading and writing it on the server is
//! the engine's (`engine::checksum`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ftp::listing::RemoteEntry;

/// The manifest's name in the remote folder when `--manifest` does not say otherwise.
pub(crate) const DEFAULT_NAME: &str = ".ftpsync-manifest.json";

/// Largest manifest ftpsync reads: about 200,000 files at ~300 bytes each. A server sending
/// more is refused, not believed (it could otherwise exhaust memory).
pub(crate) const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What the `format` field says: a file that lacks it is not a manifest.
const FORMAT: &str = "ftpsync-manifest";

/// The version written; other versions are refused rather than misread.
const VERSION: u32 = 1;

/// Largest time (UTC seconds, either side of 1970) an entry may record: about 30,000 years.
const MAX_TIME: i64 = 1 << 40;

/// What the manifest says of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// Size of the local file uploaded.
    pub(crate) size: u64,
    /// BLAKE3 of its content, 64 lowercase hex digits.
    pub(crate) blake3: String,
    /// Size the server reports for it.
    pub(crate) remote_size: u64,
    /// The time the server reports for it (UTC seconds), when known: ftpsync set it, or a
    /// listing showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) remote_mtime: Option<i64>,
    /// The interval `remote_mtime` stands for, in seconds (1, or 60 and 86400 for listings of
    /// minute or day precision).
    #[serde(default = "one_second")]
    pub(crate) remote_precision: i64,
    /// Trusted once by `--adopt` (same size, no hash to compare) rather than compared.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) adopted: bool,
}

fn one_second() -> i64 {
    1
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Entry {
    /// Whether the listing still shows the file as recorded: same size and, where both the
    /// manifest and the listing have a time, overlapping times (each stands for an interval:
    /// a listing of minute precision covers the second ftpsync set).
    pub(crate) fn listing_matches(&self, remote: &RemoteEntry) -> bool {
        if remote.size != self.remote_size {
            return false;
        }
        match (self.remote_mtime, remote.mtime) {
            (Some(recorded), Some(listed)) => {
                // Saturating: a time near the end of i64 must not overflow (a hostile manifest
                // or listing), only fail to match.
                let a1 = recorded.saturating_add(self.remote_precision.max(1));
                let b1 = listed.unix.saturating_add(listed.precision.seconds());
                let (a0, b0) = (recorded, listed.unix);
                a0 < b1 && b0 < a1
            }
            _ => true,
        }
    }
}

/// The manifest: entries by path relative to the sync root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// The `--exclude` patterns in force when it was written.
    pub(crate) excludes: Vec<String>,
    pub(crate) files: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    format: String,
    version: u32,
    excludes: Vec<String>,
    #[serde(deserialize_with = "files_once_each")]
    files: BTreeMap<String, Entry>,
}

/// The fields read before the rest, whatever else the file holds (a newer format may not parse
/// as this one). Serde refuses a field given twice.
#[derive(Deserialize)]
struct Head {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

/// The `files` object, refusing a path given twice: JSON parsers keep one of the two, and which
/// one is not for a manifest to leave open.
fn files_once_each<'de, D>(deserializer: D) -> Result<BTreeMap<String, Entry>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Files;
    impl<'de> serde::de::Visitor<'de> for Files {
        type Value = BTreeMap<String, Entry>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of files")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut files = BTreeMap::new();
            while let Some((path, entry)) = map.next_entry::<String, Entry>()? {
                if files.contains_key(&path) {
                    return Err(serde::de::Error::custom(format!(
                        "{path:?} is listed twice"
                    )));
                }
                files.insert(path, entry);
            }
            Ok(files)
        }
    }
    deserializer.deserialize_map(Files)
}

/// A manifest that cannot be used. Never taken as "no manifest".
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("not an ftpsync manifest ({0})")]
    Corrupt(String),
    #[error("manifest format version {0}, this ftpsync reads version {VERSION}; upgrade ftpsync")]
    Version(u32),
    #[error("manifest entry {path:?} is invalid: {why}")]
    BadEntry { path: String, why: &'static str },
}

impl Manifest {
    /// Reads a manifest; anything but a well-formed manifest of this version is an error.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let corrupt = |e: serde_json::Error| ManifestError::Corrupt(e.to_string());
        // An object, not an array that serde would take for one.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ManifestError::Corrupt("not a JSON object".into()));
        }
        // The version first: a newer format may not parse as this one. Straight from the bytes
        // (no `serde_json::Value`: several times the file's size in memory).
        let head: Head = serde_json::from_slice(bytes).map_err(corrupt)?;
        if head.format.as_ref().and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(ManifestError::Corrupt("no \"format\" field".into()));
        }
        match head.version.as_ref().and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) if v > u64::from(VERSION) => {
                return Err(ManifestError::Version(v.try_into().unwrap_or(u32::MAX)))
            }
            _ => return Err(ManifestError::Corrupt("no valid \"version\" field".into())),
        }
        let file: ManifestFile = serde_json::from_slice(bytes).map_err(corrupt)?;
        for (path, entry) in &file.files {
            check_entry(path, entry)?;
        }
        Ok(Manifest {
            excludes: file.excludes,
            files: file.files,
        })
    }

    /// The manifest as written to the server: pretty JSON, one entry per line or so, so that
    /// a person can read it.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let file = ManifestFile {
            format: FORMAT.into(),
            version: VERSION,
            excludes: self.excludes.clone(),
            files: self.files.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("plain data serializes");
        bytes.push(b'\n');
        bytes
    }
}

fn check_entry(path: &str, entry: &Entry) -> Result<(), ManifestError> {
    let bad = |why| ManifestError::BadEntry {
        path: path.to_string(),
        why,
    };
    let safe_path = !path.is_empty()
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.chars().any(char::is_control));
    if !safe_path {
        return Err(bad("not a relative path"));
    }
    let hex = entry.blake3.len() == 64
        && entry
            .blake3
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        return Err(bad("the hash is not 64 lowercase hex digits"));
    }
    if entry
        .remote_mtime
        .is_some_and(|t| !(-MAX_TIME..=MAX_TIME).contains(&t))
    {
        return Err(bad("the time is out of range"));
    }
    if !(1..=86_400).contains(&entry.remote_precision) {
        return Err(bad("the time precision is out of range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftp::listing::{EntryKind, RemoteTime, TimePrecision};

    fn entry() -> Entry {
        Entry {
            size: 5,
            blake3: "ab".repeat(32),
            remote_size: 5,
            remote_mtime: Some(1_700_000_030),
            remote_precision: 1,
            adopted: false,
        }
    }

    fn listed(size: u64, time: Option<(i64, TimePrecision)>) -> RemoteEntry {
        RemoteEntry {
            name: "f".into(),
            kind: EntryKind::File,
            link: None,
            size,
            mtime: time.map(|(unix, precision)| RemoteTime { unix, precision }),
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let mut m = Manifest {
            excludes: vec!["*.log".into()],
            ..Manifest::default()
        };
        m.files.insert("a/b.html".into(), entry());
        let adopted = Entry {
            adopted: true,
            remote_mtime: None,
            ..entry()
        };
        m.files.insert("c".into(), adopted);
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn anything_but_a_manifest_is_an_error_never_an_empty_manifest() {
        let good = String::from_utf8(Manifest::default().to_bytes()).unwrap();
        for bad in [
            "",
            "{",
            "null",
            "[]",
            "{}",
            r#"{"format":"ftpsync-manifest","version":1}"#,
            &good.replace("\"files\"", "\"filez\""),
            &good[..good.len() - 3],
        ] {
            let err = Manifest::parse(bad.as_bytes()).expect_err(bad);
            assert!(matches!(err, ManifestError::Corrupt(_)), "{bad}: {err}");
        }
        let newer = good.replace("\"version\": 1", "\"version\": 2");
        assert!(matches!(
            Manifest::parse(newer.as_bytes()),
            Err(ManifestError::Version(2))
        ));
    }

    #[test]
    fn entries_with_unsafe_paths_or_bad_hashes_are_refused() {
        for (path, e) in [
            ("../x", entry()),
            ("/x", entry()),
            ("a//b", entry()),
            (
                "ok",
                Entry {
                    blake3: "AB".repeat(32),
                    ..entry()
                },
            ),
            (
                "ok",
                Entry {
                    blake3: "ab".into(),
                    ..entry()
                },
            ),
        ] {
            let mut m = Manifest::default();
            m.files.insert(path.into(), e);
            let err = Manifest::parse(&m.to_bytes()).expect_err(path);
            assert!(matches!(err, ManifestError::BadEntry { .. }), "{err}");
        }
    }

    #[test]
    fn duplicates_odd_shapes_and_old_versions_are_refused() {
        let good = String::from_utf8(Manifest::default().to_bytes()).unwrap();
        let e = r#"{"size":1,"blake3":"BLAKE","remote_size":1}"#.replace("BLAKE", &"ab".repeat(32));
        let twice = good.replace(
            "\"files\": {}",
            &format!("\"files\": {{\"a\": {e}, \"a\": {e}}}"),
        );
        assert!(twice.contains("\"a\""), "{twice}");
        let once = twice.replacen(&format!(", \"a\": {e}"), "", 1);
        assert_eq!(Manifest::parse(once.as_bytes()).unwrap().files.len(), 1);
        for bad in [
            twice,
            good.replace("\"version\": 1", "\"version\": 1, \"version\": 1"),
            good.replace("\"version\": 1", "\"version\": 0"),
            good.replace("\"version\": 1", "\"version\": \"1\""),
            r#"["ftpsync-manifest", 1, [], {}]"#.to_string(),
            good.replace("\"files\": {}", "\"files\": []"),
        ] {
            let err = Manifest::parse(bad.as_bytes()).expect_err(&bad);
            assert!(matches!(err, ManifestError::Corrupt(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn times_at_the_ends_of_the_range_are_refused_or_never_overflow() {
        for t in [i64::MAX, i64::MIN, MAX_TIME + 1] {
            let mut m = Manifest::default();
            let far = Entry {
                remote_mtime: Some(t),
                ..entry()
            };
            m.files.insert("f".into(), far);
            let err = Manifest::parse(&m.to_bytes()).expect_err("far time");
            assert!(matches!(err, ManifestError::BadEntry { .. }), "{err}");
        }
        let late = Entry {
            remote_mtime: Some(i64::MAX),
            remote_precision: 86_400,
            ..entry()
        };
        assert!(!late.listing_matches(&listed(5, Some((0, TimePrecision::Day)))));
        assert!(entry().listing_matches(&listed(5, None)));
        let far_listing = listed(5, Some((i64::MAX, TimePrecision::Day)));
        assert!(!entry().listing_matches(&far_listing));
    }

    #[test]
    fn a_listing_matches_within_its_precision() {
        let e = entry();
        let t = 1_700_000_030;
        assert!(e.listing_matches(&listed(5, Some((t, TimePrecision::Second)))));
        assert!(e.listing_matches(&listed(5, Some((t - 30, TimePrecision::Minute)))));
        assert!(e.listing_matches(&listed(5, None)));
        assert!(!e.listing_matches(&listed(6, Some((t, TimePrecision::Second)))));
        assert!(!e.listing_matches(&listed(5, Some((t + 1, TimePrecision::Second)))));
        assert!(!e.listing_matches(&listed(5, Some((t + 30, TimePrecision::Minute)))));
        // Recorded from a minute listing, later listed to the second within that minute.
        let minute = Entry {
            remote_mtime: Some(t - 30),
            remote_precision: 60,
            ..entry()
        };
        assert!(minute.listing_matches(&listed(5, Some((t + 29, TimePrecision::Second)))));
        assert!(!minute.listing_matches(&listed(5, Some((t + 30, TimePrecision::Second)))));
        let unknown = Entry {
            remote_mtime: None,
            ..entry()
        };
        assert!(unknown.listing_matches(&listed(5, Some((t, TimePrecision::Second)))));
    }
}
