//! `--checksum` in one run: the manifest is read from the server (over a worker's connection,
//! before the listing) while the local files are hashed ([`hashing`]); without a manifest
//! entry, same-size files are compared with the server's own hashes where it has a hash
//! command; the planner then compares by content ([`super::plan::ContentCheck`]). While the
//! uploads run, the manifest is rewritten every few seconds ([`Checkpoints`]), each time with
//! only the uploads that completed, and once more at the end over a connection of its own
//! (which first lists the times the server gave the uploads whose time ftpsync could not set).
//!
//! What the manifest claims is always true of the server: an entry is added only once its
//! upload was renamed into place, and is dropped, not kept, for a file whose content ftpsync
//! cannot vouch for.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config;
use crate::engine::job::{Job, JobError, Outcome, WorkerContext};
use crate::engine::plan::{Op, Plan, RemoteTree};
use crate::engine::pool::{Dispatcher, Report};
use crate::engine::{Run, SyncError};
use crate::ftp::digest::HashCommand;
use crate::ftp::{Connection, FtpError};
use crate::local::{LocalKind, LocalTree, Relation, Scope};
use crate::manifest::{Entry, Manifest};

mod hashing;
pub(crate) mod io;

pub(crate) use hashing::{spawn as spawn_hashing, LocalHashes};

/// How often the manifest is rewritten while uploads complete: a run killed half way sends
/// again at most what completed in the last few seconds.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(3);

/// What the server told before the listing: its manifest (None: there is none) and how it
/// hashes files, if it can.
pub(crate) struct Fetched {
    pub(crate) manifest: Option<Manifest>,
    pub(crate) server_hash: Option<HashCommand>,
}

/// `cfg` with the manifest's place in the remote folder settled against the login folder
/// (`login`, from PWD): `--manifest /www/m.json` for the folder `www` of a login at `/` is
/// inside it as much as `--manifest www/m.json` is, and must be as safe from `--delete`.
pub(super) fn settled(cfg: &config::Checksum, root: &str, login: Option<&str>) -> config::Checksum {
    let mut cfg = cfg.clone();
    if cfg.manifest_rel.is_none() {
        cfg.manifest_rel = inside(&cfg.manifest, root, login);
    }
    cfg
}

/// `path` relative to the folder `root` (both as FTP commands name them: absolute, or relative
/// to the login folder `login`), if it lies below it. None when that cannot be told.
pub(super) fn inside(path: &str, root: &str, login: Option<&str>) -> Option<String> {
    let absolute = |p: &str| -> Option<Vec<String>> {
        let full = match p.starts_with('/') {
            true => p.to_string(),
            false => format!("{}/{p}", login?),
        };
        let parts: Vec<String> = full
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(str::to_string)
            .collect();
        (!parts.iter().any(|s| s == "..")).then_some(parts)
    };
    let (path, root) = (absolute(path)?, absolute(root)?);
    (path.len() > root.len() && path.starts_with(&root)).then(|| path[root.len()..].join("/"))
}

/// The local manifest file, if the local tree has one at the manifest's place: it is never
/// uploaded (the server's is ftpsync's own). Removed from `local` with a notice, and so is
/// everything below a local folder of that name (it would take the manifest's place).
pub(super) fn keep_local_copy_out(run: &Run<'_>, cfg: &config::Checksum, local: &mut LocalTree) {
    let Some(rel) = &cfg.manifest_rel else { return };
    if local.take_out(rel) {
        run.reporter.notice(&format!(
            "{rel}: not uploaded: the server's copy is the --checksum manifest"
        ));
    }
}

impl Run<'_> {
    /// Reads the manifest over the pool. An unreadable or invalid manifest stops the run.
    pub(crate) async fn fetch_manifest(
        &mut self,
        pool: &mut Dispatcher,
        cfg: &config::Checksum,
    ) -> Result<Fetched, SyncError> {
        let operation = format!("RETR {}", cfg.manifest);
        let fetch = Job::Fetch(cfg.manifest.clone());
        let result = pool.run_one(fetch, &self.stop, operation).await?;
        let unreadable = |reason: String| SyncError::Manifest {
            path: cfg.manifest.clone(),
            reason,
        };
        match result {
            Ok(Outcome::Fetched { bytes, server_hash }) => {
                let manifest = match bytes {
                    Some(bytes) => {
                        Some(Manifest::parse(&bytes).map_err(|e| unreadable(e.to_string()))?)
                    }
                    None => None,
                };
                if cfg.adopt && manifest.is_some() {
                    self.reporter.notice(&format!(
                        "--adopt ignored: the server has a manifest ({}); files it does not record are compared, not adopted",
                        cfg.manifest
                    ));
                }
                Ok(Fetched {
                    manifest,
                    server_hash,
                })
            }
            Ok(_) => unreachable!("a fetch gives Fetched"),
            Err(JobError::Interrupted) => Err(SyncError::Interrupted),
            // The server went away (after the retries): nothing is known of the manifest, and
            // a later --every cycle may do better. Still exit 2 for a single run.
            Err(JobError::Remote(e @ (FtpError::Timeout { .. } | FtpError::Connection { .. }))) => {
                Err(SyncError::Connect(e))
            }
            Err(e) => Err(unreadable(e.to_string())),
        }
    }

    /// Same-size files that the manifest does not judge, compared with the server's hashes:
    /// whether each one's hash is the local file's. Files the server could not hash are left
    /// out (they are uploaded, or adopted with `--adopt`).
    pub(crate) async fn server_verdicts(
        &mut self,
        pool: &mut Dispatcher,
        how: HashCommand,
        local: &LocalTree,
        remote: &RemoteTree,
        manifest: &Manifest,
    ) -> HashMap<String, bool> {
        let candidates: Vec<String> = local
            .entries
            .iter()
            .filter(|(rel, e)| {
                e.kind == LocalKind::File
                    && e.size > 0
                    && !manifest.files.contains_key(*rel)
                    && remote.get(*rel).is_some_and(|r| {
                        r.kind == crate::ftp::listing::EntryKind::File && r.size == e.size
                    })
            })
            .map(|(rel, _)| rel.clone())
            .collect();
        self.hash_verdicts(pool, how.algorithm(), candidates).await
    }
}

impl Run<'_> {
    /// Before any upload, when the server's manifest has entries of files about to be
    /// uploaded: writes it without them, and waits for that. Failing that, nothing is uploaded
    /// (each upload renamed into place would make the server's manifest untrue).
    pub(crate) async fn prewrite_manifest(
        &mut self,
        pool: &mut Dispatcher,
    ) -> Result<(), SyncError> {
        let Some(checkpoints) = self.checkpoints.as_mut().filter(|c| c.prewrite) else {
            return Ok(());
        };
        checkpoints.send(pool);
        let id = checkpoints.in_flight.expect("just sent");
        let path = checkpoints.path.clone();
        let result = loop {
            match pool.next().await {
                Report::Done { id: done, result } if done == id => break result,
                Report::Done { .. } => continue,
                Report::NoWorkers => break Err(JobError::Interrupted),
            }
        };
        if let Some(checkpoints) = self.checkpoints.as_mut() {
            checkpoints.take_report(id, &result);
        }
        match result {
            Ok(_) => Ok(()),
            Err(_) if self.stop.is_cancelled() => Err(SyncError::Interrupted),
            Err(JobError::Interrupted) => Err(SyncError::ManifestWrite {
                path,
                reason: "every connection to the server was lost".into(),
            }),
            Err(e) => Err(SyncError::ManifestWrite {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// Writes the run's final manifest (if it differs from the server's), after the workers
    /// are gone; a failure is the run's failure (the next run re-uploads what it would miss).
    pub(crate) async fn write_manifest(
        &mut self,
        ctx: &WorkerContext,
        mut checkpoints: Checkpoints,
    ) {
        self.summary.manifest_written = checkpoints.wrote;
        if checkpoints.final_bytes().is_none() && checkpoints.untimed.is_empty() {
            return;
        }
        match write_final(ctx, &mut checkpoints).await {
            Ok(written) => self.summary.manifest_written |= written,
            Err(e) => self.fail(
                checkpoints.path(),
                &format!("could not write the --checksum manifest: {e}"),
            ),
        }
    }
}

/// A file planned for upload, as its manifest entry will be once the upload is done.
struct Pending {
    size: u64,
    mtime: i64,
    mtime_ns: i64,
    blake3: Option<String>,
}

/// The manifest as the run goes: what the server holds after each completed upload, written
/// every [`CHECKPOINT_EVERY`] while uploads complete.
pub(crate) struct Checkpoints {
    /// Where it goes (as FTP commands name it).
    path: String,
    /// The manifest the server holds, as far as this run knows: the one read when the run
    /// began, then the last one written (None: none, or unknown after a failed write).
    read: Option<Manifest>,
    /// The manifest of the write in flight.
    sending: Option<Manifest>,
    manifest: Manifest,
    pending: HashMap<String, Pending>,
    local_root: std::path::PathBuf,
    /// Uploads recorded since the last write began.
    dirty: bool,
    /// The write in flight (a pool job id).
    in_flight: Option<usize>,
    next: Instant,
    /// Whether a write succeeded.
    pub(crate) wrote: bool,
    /// Uploads recorded without a time (ftpsync could not set it): the final write lists their
    /// folders and records the time the server shows.
    untimed: Vec<String>,
    /// Whether the server's manifest has entries of files about to be uploaded: it is rewritten
    /// without them before any upload ([`Run::prewrite_manifest`]).
    prewrite: bool,
}

/// What the run's manifest is built from.
pub(crate) struct Inputs<'a> {
    pub(crate) cfg: &'a config::Checksum,
    pub(crate) read: Option<Manifest>,
    pub(crate) scope: &'a Scope,
    pub(crate) local: &'a LocalTree,
    pub(crate) remote: &'a RemoteTree,
    pub(crate) plan: &'a Plan,
    pub(crate) hashes: &'a LocalHashes,
    pub(crate) server_same: &'a HashMap<String, bool>,
}

impl Checkpoints {
    /// The manifest before any upload: the entries of the files left as they are (new ones
    /// for files judged unchanged without an entry: by the server's hash, or adopted), none
    /// for paths in this run's scope that are no longer local files, and none for files to
    /// upload (once an upload is renamed into place, an old entry would claim the old content,
    /// which a listing of the same size and minute does not contradict).
    pub(crate) fn new(inputs: Inputs<'_>, local_root: std::path::PathBuf) -> Checkpoints {
        let Inputs {
            cfg,
            read,
            scope,
            local,
            remote,
            plan,
            hashes,
            server_same,
        } = inputs;
        let old = read.clone().unwrap_or_default();
        let is_local_file = |rel: &str| {
            local
                .entries
                .get(rel)
                .is_some_and(|e| e.kind == LocalKind::File)
        };
        let mut files: std::collections::BTreeMap<String, Entry> = old
            .files
            .into_iter()
            .filter(|(rel, _)| scope.relation(rel) == Relation::Outside || is_local_file(rel))
            .collect();
        for rel in &plan.unchanged {
            let (Some(local), Some(listed)) = (local.entries.get(rel), remote.get(rel)) else {
                continue;
            };
            let listed_time = listed.mtime.map(|t| (t.unix, t.precision.seconds()));
            match files.get_mut(rel) {
                Some(entry) => {
                    // A time the upload could not set is the one the server listed since.
                    if entry.remote_mtime.is_none() {
                        if let Some((unix, precision)) = listed_time {
                            entry.remote_mtime = Some(unix);
                            entry.remote_precision = precision;
                        }
                    }
                }
                None => {
                    let Some(Some(hash)) = hashes.get(rel) else {
                        continue;
                    };
                    files.insert(
                        rel.clone(),
                        Entry {
                            size: local.size,
                            blake3: hash.clone(),
                            remote_size: listed.size,
                            remote_mtime: listed_time.map(|t| t.0),
                            remote_precision: listed_time.map_or(1, |t| t.1),
                            adopted: local.size > 0 && server_same.get(rel) != Some(&true),
                        },
                    );
                }
            }
        }
        let pending = plan
            .actions
            .iter()
            .filter_map(|a| match &a.op {
                Op::Upload { rel, .. } => {
                    let e = local.entries.get(rel)?;
                    Some((
                        rel.clone(),
                        Pending {
                            size: e.size,
                            mtime: e.mtime,
                            mtime_ns: e.mtime_ns,
                            blake3: hashes.get(rel).cloned().flatten(),
                        },
                    ))
                }
                _ => None,
            })
            .collect::<HashMap<String, Pending>>();
        let mut prewrite = false;
        for rel in pending.keys() {
            prewrite |= files.remove(rel).is_some();
        }
        Checkpoints {
            path: cfg.manifest.clone(),
            read,
            sending: None,
            manifest: Manifest {
                excludes: cfg.excludes.clone(),
                files,
            },
            pending,
            local_root,
            dirty: false,
            in_flight: None,
            next: Instant::now() + CHECKPOINT_EVERY,
            wrote: false,
            untimed: Vec::new(),
            prewrite,
        }
    }

    /// The upload of `rel` was renamed into place (`time_set`: with the local time). Its entry
    /// says what was hashed, if the local file is still that version; otherwise there is none.
    pub(crate) fn uploaded(&mut self, rel: &str, time_set: bool) {
        let Some(p) = self.pending.remove(rel) else {
            return;
        };
        let still = std::fs::metadata(self.local_root.join(rel))
            .ok()
            .is_some_and(|m| {
                let ns = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i64);
                m.len() == p.size && ns == p.mtime_ns
            });
        match p.blake3.filter(|_| still) {
            Some(blake3) => {
                let entry = Entry {
                    size: p.size,
                    blake3,
                    remote_size: p.size,
                    remote_mtime: time_set.then_some(p.mtime),
                    remote_precision: 1,
                    adopted: false,
                };
                self.manifest.files.insert(rel.to_string(), entry);
                if !time_set {
                    self.untimed.push(rel.to_string());
                }
            }
            None => {
                self.manifest.files.remove(rel);
            }
        }
        self.dirty = true;
    }

    /// When the next checkpoint is due, if one is: uploads were recorded since the last one,
    /// and none is being written.
    pub(crate) fn due(&self) -> Option<Instant> {
        (self.dirty && self.in_flight.is_none()).then_some(self.next)
    }

    /// Sends the manifest as it is now to the server (a pool job).
    pub(crate) fn send(&mut self, pool: &mut Dispatcher) {
        let bytes = std::sync::Arc::new(self.manifest.to_bytes());
        self.sending = Some(self.manifest.clone());
        let job = Job::Put {
            path: self.path.clone(),
            bytes,
        };
        self.in_flight = Some(pool.send_high(job));
        self.dirty = false;
        self.next = Instant::now() + CHECKPOINT_EVERY;
    }

    /// Takes a job's result if it is the checkpoint's; a failed checkpoint is only logged (the
    /// final write reports).
    pub(crate) fn take_report(&mut self, id: usize, result: &Result<Outcome, JobError>) -> bool {
        if self.in_flight != Some(id) {
            return false;
        }
        self.in_flight = None;
        let sent = self.sending.take();
        match result {
            Ok(_) => {
                self.wrote = true;
                // What the final write is compared with: the server holds this one now.
                self.read = sent;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not write the manifest checkpoint");
                self.dirty = true;
                // Half written or not at all: only a final write makes it known again.
                self.read = None;
            }
        }
        true
    }

    /// The final manifest, unless it is the one the server already holds (the one read, or the
    /// last one written: after the entries of files to upload were dropped first, an upload of
    /// the same content and time brings back the manifest read, which the server no longer
    /// holds).
    pub(crate) fn final_bytes(&self) -> Option<Vec<u8>> {
        (self.read.as_ref() != Some(&self.manifest)).then(|| self.manifest.to_bytes())
    }

    /// Where the manifest goes.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }
}

impl Checkpoints {
    /// Records the size and time the server lists for the uploads whose time ftpsync could not
    /// set, listing each of their folders once over `conn`. A file listed with another size
    /// than uploaded loses its entry (the server does not hold what was uploaded); a listing
    /// that fails leaves the entries without a time (only their size is compared).
    async fn time_untimed(&mut self, ctx: &WorkerContext, conn: &mut Connection) {
        let untimed: std::collections::HashSet<String> = self.untimed.drain(..).collect();
        let folders: std::collections::BTreeSet<&str> = untimed
            .iter()
            .map(|rel| rel.rsplit_once('/').map_or("", |(parent, _)| parent))
            .collect();
        for folder in folders {
            let path = ctx.target.remote_path(folder);
            let listing = match conn.list(&path, false, ctx.quirks.stat_for_mlsd()).await {
                Ok(listing) => listing,
                Err(e) => {
                    tracing::info!(folder, error = %e, "cannot list the times of the uploads");
                    continue;
                }
            };
            for listed in &listing.parsed.entries {
                let rel = match folder {
                    "" => listed.name.clone(),
                    _ => format!("{folder}/{}", listed.name),
                };
                if !untimed.contains(&rel) {
                    continue;
                }
                let Some(entry) = self.manifest.files.get_mut(&rel) else {
                    continue;
                };
                if listed.size != entry.remote_size {
                    self.manifest.files.remove(&rel);
                } else if let Some(t) = listed.mtime {
                    entry.remote_mtime = Some(t.unix);
                    entry.remote_precision = t.precision.seconds();
                }
            }
        }
    }
}

/// Writes the final manifest over a fresh connection (the workers have logged out by now;
/// after a stop too, so that what completed is recorded), with the run's retries, after
/// recording the times the server lists for uploads whose time it could not set. Ok(false)
/// when there was nothing to write after all.
pub(crate) async fn write_final(
    ctx: &WorkerContext,
    checkpoints: &mut Checkpoints,
) -> Result<bool, FtpError> {
    let mut last = None;
    for attempt in 0..ctx.retries.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(attempt - 1)).await;
        }
        let mut conn = match Connection::open(&ctx.target, &ctx.login, ctx.timeout).await {
            Ok(conn) => conn,
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        checkpoints.time_untimed(ctx, &mut conn).await;
        let Some(bytes) = checkpoints.final_bytes() else {
            conn.quit().await;
            return Ok(false);
        };
        let result = io::put(ctx, &mut conn, &checkpoints.path, &bytes).await;
        conn.quit().await;
        match result {
            Ok(()) => return Ok(true),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one try"))
}

#[cfg(test)]
mod tests;
