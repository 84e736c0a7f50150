//! Hashing local files: BLAKE3 of every file of the tree, on a few threads of their own while
//! the remote tree is listed, and the algorithm a server hashes with, for the few files
//! compared that way (against the server's hashes, asked over the workers: [`Run::hash_verdicts`],
//! which a pull's `--checksum` uses too). A file that changes while it is hashed gets no hash (it
//! is uploaded).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::engine::job::{Job, Outcome};
use crate::engine::pool::{Dispatcher, Report};
use crate::engine::Run;
use crate::ftp::digest::Algorithm;
use crate::local::{LocalKind, LocalTree};

/// Most threads hashing at once: enough to keep a disk and a few cores busy, few enough to
/// leave room for the listing and the rest of the machine.
const MAX_THREADS: usize = 8;

/// BLAKE3 hashes (64 lowercase hex digits) by path relative to the root; None for a file that
/// could not be read, or changed while it was read.
pub(crate) type LocalHashes = HashMap<String, Option<String>>;

/// A file to hash and the version the scan saw (size, modification time in ns).
struct ToHash {
    rel: String,
    size: u64,
    mtime_ns: i64,
}

/// Starts hashing every file of `local` on blocking threads; the handle gives the hashes.
pub(crate) fn spawn(root: &Path, local: &LocalTree) -> tokio::task::JoinHandle<LocalHashes> {
    let files: Vec<ToHash> = local
        .entries
        .iter()
        .filter(|(_, e)| e.kind == LocalKind::File)
        .map(|(rel, e)| ToHash {
            rel: rel.clone(),
            size: e.size,
            mtime_ns: e.mtime_ns,
        })
        .collect();
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || hash_all(&root, &files))
}

fn hash_all(root: &Path, files: &[ToHash]) -> LocalHashes {
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(1, MAX_THREADS)
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let out = Mutex::new(LocalHashes::with_capacity(files.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(file) = files.get(i) else { break };
                let hash = blake3_of(&root.join(&file.rel), file.size, file.mtime_ns);
                out.lock()
                    .expect("no panic holds the lock")
                    .insert(file.rel.clone(), hash);
            });
        }
    });
    out.into_inner().expect("no panic holds the lock")
}

/// The file's BLAKE3, if it is still the version the scan saw, before and after reading.
fn blake3_of(path: &Path, size: u64, mtime_ns: i64) -> Option<String> {
    // The scan's way of reading the time, to the nanosecond.
    let same = |m: &std::fs::Metadata| {
        let ns = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default()
            .as_nanos() as i64;
        m.len() == size && ns == mtime_ns
    };
    let mut file = std::fs::File::open(path).ok()?;
    if !same(&file.metadata().ok()?) {
        return None;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut file).ok()?;
    let after = std::fs::metadata(path).ok()?;
    same(&after).then(|| hasher.finalize().to_hex().to_string())
}

/// The digest of a local file with a server's algorithm.
pub(crate) fn digest_file(path: &Path, algorithm: Algorithm) -> std::io::Result<Vec<u8>> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut sha256 = sha2::Sha256::new();
    let mut sha1 = sha1::Sha1::new();
    let mut md5 = md5::Md5::new();
    let mut crc = crc32fast::Hasher::new();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        match algorithm {
            Algorithm::Sha256 => sha256.update(chunk),
            Algorithm::Sha1 => sha1.update(chunk),
            Algorithm::Md5 => md5.update(chunk),
            Algorithm::Crc32 => crc.update(chunk),
        }
    }
    Ok(match algorithm {
        Algorithm::Sha256 => sha256.finalize().to_vec(),
        Algorithm::Sha1 => sha1.finalize().to_vec(),
        Algorithm::Md5 => md5.finalize().to_vec(),
        Algorithm::Crc32 => crc.finalize().to_be_bytes().to_vec(),
    })
}

/// Digests of `rels` below `root` with `algorithm`, on a blocking thread; None for a file
/// that could not be read.
pub(crate) async fn digest_files(
    root: PathBuf,
    rels: Vec<String>,
    algorithm: Algorithm,
) -> HashMap<String, Option<Vec<u8>>> {
    tokio::task::spawn_blocking(move || {
        rels.into_iter()
            .map(|rel| {
                let digest = digest_file(&root.join(&rel), algorithm).ok();
                (rel, digest)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

impl Run<'_> {
    /// Whether each of `candidates` (local files, relative to the root) has the same `algorithm`
    /// digest here and on the server (their hashes asked over the workers, the local ones
    /// computed meanwhile); a file either side could not hash is left out.
    pub(crate) async fn hash_verdicts(
        &mut self,
        pool: &mut Dispatcher,
        algorithm: Algorithm,
        candidates: Vec<String>,
    ) -> HashMap<String, bool> {
        if candidates.is_empty() {
            return HashMap::new();
        }
        let local_digests = tokio::spawn(digest_files(
            self.config.local_dir.clone(),
            candidates.clone(),
            algorithm,
        ));
        let mut pending: HashMap<usize, String> = candidates
            .into_iter()
            .map(|rel| (pool.send_high(Job::Hash(rel.clone())), rel))
            .collect();
        let mut remote_digests = HashMap::new();
        while !pending.is_empty() {
            let (id, result) = match pool.next().await {
                Report::Done { id, result } => (id, result),
                Report::NoWorkers => break,
            };
            let Some(rel) = pending.remove(&id) else {
                continue;
            };
            match result {
                Ok(Outcome::Hashed(Some((_, digest)))) => {
                    remote_digests.insert(rel, digest);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::info!(path = %rel, error = %e, "the server did not hash the file")
                }
            }
        }
        let local_digests = local_digests.await.unwrap_or_default();
        remote_digests
            .into_iter()
            .filter_map(|(rel, remote)| {
                let local = local_digests.get(&rel)?.as_ref()?;
                Some((rel, *local == remote))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::MetadataExt;

    #[test]
    fn known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let d = |a| hex(digest_file(&path, a).unwrap());
        assert_eq!(
            d(Algorithm::Sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            d(Algorithm::Sha1),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(d(Algorithm::Md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d(Algorithm::Crc32), "352441c2");
        let meta = std::fs::metadata(&path).unwrap();
        let ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        assert_eq!(
            blake3_of(&path, 3, ns).as_deref(),
            Some(blake3::hash(b"abc").to_hex().as_str())
        );
        assert_eq!(
            blake3_of(&path, 4, ns),
            None,
            "another version than scanned"
        );
    }
}
