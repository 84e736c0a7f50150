//! The `--checksum` comparison of a file present on both sides: by content, against the
//! manifest of what ftpsync last put on the server, and against the listing, which tells
//! whether the server still holds that (a file changed on the server is put back).

use std::collections::HashMap;

use crate::engine::checksum::LocalHashes;
use crate::ftp::listing::RemoteEntry;
use crate::local::LocalEntry;
use crate::manifest::Manifest;

/// What a `--checksum` run compares with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContentCheck<'a> {
    /// The manifest read from the server (empty when there was none).
    pub(crate) manifest: &'a Manifest,
    /// BLAKE3 of the local files.
    pub(crate) hashes: &'a LocalHashes,
    /// Files of the same size on both sides and not in the manifest that the server hashed:
    /// whether its hash was the local file's.
    pub(crate) server_same: &'a HashMap<String, bool>,
    /// `--adopt`: a same-size file nothing else can judge counts as unchanged.
    pub(crate) adopt: bool,
}

/// The judgement on one file present on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing to send; `by_hash` when a hash comparison said so.
    Unchanged { by_hash: bool },
    /// The local content differs (or cannot be known to be the same).
    Changed { by_hash: bool },
    /// The local content is what the manifest recorded, but the server no longer lists the
    /// file as it was uploaded: it was changed there, and is put back.
    Drift,
}

impl ContentCheck<'_> {
    /// Judges the local file `rel` against the remote file of the same path.
    pub(crate) fn judge(&self, rel: &str, local: &LocalEntry, remote: &RemoteEntry) -> Verdict {
        let hash = self.hashes.get(rel).and_then(Option::as_deref);
        if let Some(entry) = self.manifest.files.get(rel) {
            let Some(hash) = hash else {
                return Verdict::Changed { by_hash: false };
            };
            if entry.size != local.size || entry.blake3 != hash {
                return Verdict::Changed { by_hash: true };
            }
            if !entry.listing_matches(remote) {
                return Verdict::Drift;
            }
            return Verdict::Unchanged { by_hash: true };
        }
        if remote.size != local.size {
            return Verdict::Changed { by_hash: false };
        }
        if local.size == 0 {
            // Two empty files hold the same: nothing to ask the server.
            return Verdict::Unchanged { by_hash: false };
        }
        match self.server_same.get(rel) {
            Some(true) => Verdict::Unchanged { by_hash: true },
            Some(false) => Verdict::Changed { by_hash: true },
            None if self.adopt && hash.is_some() => Verdict::Unchanged { by_hash: false },
            None => Verdict::Changed { by_hash: false },
        }
    }

    /// Whether the manifest records `rel`: a file it records that the server no longer has
    /// was removed there.
    pub(crate) fn recorded(&self, rel: &str) -> bool {
        self.manifest.files.contains_key(rel)
    }
}
