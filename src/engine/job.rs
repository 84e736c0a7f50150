//! The work the coordinator hands to the workers: a [`Job`] (with its coordinator's handle, a
//! [`Task`]), what it gives ([`Outcome`] or [`JobError`]), and the [`WorkerContext`] every worker
//! runs its jobs in.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::plan::Op;
use crate::engine::quirks::ServerQuirks;
use crate::ftp::digest::{Algorithm, HashCommand};
use crate::ftp::listing::Parsed;
use crate::ftp::target::Target;
use crate::ftp::{FtpError, Login};
use crate::temp_name::RunToken;

/// Something for a worker to do.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    /// List a remote folder (relative to the root).
    List(String),
    /// Carry out one planned operation.
    Run(Op),
    /// `--checksum`: read the manifest at this path (as FTP commands name it).
    Fetch(String),
    /// `--checksum`: write the manifest: under a temporary name, renamed into place once its
    /// size is checked.
    Put {
        path: String,
        bytes: std::sync::Arc<Vec<u8>>,
    },
    /// `--checksum`: the server's hash of a file (relative to the root).
    Hash(String),
    /// A pull: one remote file into the local tree.
    Download(crate::engine::pull::Download),
}

/// A job with the coordinator's handle on it.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) id: usize,
    pub(crate) job: Job,
}

/// What a successful job produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    Listed(Parsed),
    /// Done; for uploads, the bytes sent and whether the remote time was set.
    Done {
        bytes: u64,
        time_set: bool,
    },
    /// The manifest (None: there is none), and how the server hashes files, if it can.
    Fetched {
        bytes: Option<Vec<u8>>,
        server_hash: Option<HashCommand>,
    },
    /// The server's hash of a file (None: it computes none).
    Hashed(Option<(Algorithm, Vec<u8>)>),
    /// A download's bytes are all here; its file is being put in place (fsync, rename) on a
    /// blocking thread. The worker reports the job once that ends, and goes on meanwhile: the
    /// coordinator never sees this outcome.
    Finishing(tokio::task::JoinHandle<Result<Outcome, JobError>>),
}

/// Why a job failed for good.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error("{0}")]
    Remote(#[from] FtpError),
    #[error("{0}")]
    Local(String),
    #[error("not started: stopping")]
    Interrupted,
    /// A pull: the local disk is full (no further download starts).
    #[error("{0}")]
    DiskFull(String),
}

/// What every worker shares.
pub(crate) struct WorkerContext {
    pub(crate) target: Target,
    pub(crate) login: Login,
    pub(crate) local_root: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    /// Upload under a temporary name, then rename over the target.
    pub(crate) atomic: bool,
    /// This cycle's token, in its temporary names.
    pub(crate) run_token: RunToken,
    /// The server's address and login folder, as one connection found them (the others wait
    /// for it: one PWD per run).
    pub(crate) whereabouts: tokio::sync::OnceCell<(Option<std::net::SocketAddr>, Option<String>)>,
    pub(crate) stop: CancellationToken,
    /// What the workers learnt about the server so far.
    pub(crate) quirks: ServerQuirks,
    /// The uploads' progress, when it is shown.
    pub(crate) progress: Option<std::sync::Arc<crate::progress::Tracker>>,
    /// `--bwlimit`: one bucket for every worker's file bytes (None: no limit).
    pub(crate) bwlimit: Option<std::sync::Arc<crate::ftp::bwlimit::Bandwidth>>,
    /// `--backup-dir`: where replaced and deleted files go first.
    pub(crate) backup: Option<crate::engine::backup::Backup>,
    /// `--chmod` and `--perms` (see [`crate::engine::perms`]); None sends no modes.
    pub(crate) modes: Option<crate::chmod::Modes>,
}

impl WorkerContext {
    /// A try at uploading `rel` from `offset` begins: the counter for its bytes, if anyone
    /// watches.
    pub(crate) fn sending(&self, rel: &str, offset: u64) -> Option<crate::ftp::Sent> {
        self.progress.as_ref().map(|t| t.sending(rel, offset))
    }
}
